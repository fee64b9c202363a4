package training_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/client"
	"github.com/bourse-dev/bourse/pkg/consul"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// hostCluster is Consul and the coordinator in the root namespace, bound to the bridge of a
// testenv.Network as well as (Consul) to loopback, with workers started inside the network's
// namespaces: every address a worker uses is one it was given, none is 127.0.0.1 of the root
// namespace.
type hostCluster struct {
	*cluster
	nw         *testenv.Network
	consulAddr string // Consul's HTTP API on the bridge
	coordAddr  string
}

func newHostCluster(t testing.TB, nw *testenv.Network) *hostCluster {
	t.Helper()
	agent := testenv.StartConsul(t, fmt.Sprintf(`client_addr = "127.0.0.1 %s"`, nw.Gateway))
	_, httpPort, _ := net.SplitHostPort(agent.Addr)
	hc := &hostCluster{nw: nw, consulAddr: net.JoinHostPort(nw.Gateway, httpPort),
		cluster: &cluster{t: t, agent: agent, dataDir: t.TempDir(), port: testenv.FreePort(t)}}
	hc.coordAddr = net.JoinHostPort(nw.Gateway, fmt.Sprint(hc.port))
	hc.coord = testenv.StartService(t, testenv.Build(t, coordinatorPkg), nil,
		"--consul-addr="+agent.Addr, "--api-keys="+apiKeys, "--check-interval=1s", "--grpc-addr="+hc.coordAddr,
		"--data-dir="+filepath.Join(hc.dataDir, "coordinator"), "--heartbeat-interval=250ms")
	conn, err := client.Dial(hc.coordAddr, client.Options{APIKey: adminKey, MaxMessageBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	hc.admin = trainingv1.NewTrainingCoordinatorServiceClient(conn)
	return hc
}

// startWorkerOn starts a worker inside h's namespace, advertising h's address and port. It listens
// on listenHost: h.Addr itself, or the namespace's own loopback when something else (a relay)
// serves h.Addr on the same port.
func (hc *hostCluster) startWorkerOn(h *testenv.Host, id, listenHost string, port int) *testenv.Process {
	t := hc.t
	t.Helper()
	w := testenv.StartService(t, h.Wrap(t, testenv.Build(t, workerPkg)), nil,
		"--consul-addr="+hc.consulAddr, "--api-keys="+apiKeys, "--api-key="+workerKey, "--check-interval=1s",
		fmt.Sprintf("--grpc-addr=%s:%d", listenHost, port), "--advertise-host="+h.Addr,
		"--coordinator="+hc.coordAddr, "--worker-id="+id)
	hc.workers = append(hc.workers, w)
	return w
}

// stopWorkers stops every worker started so far and waits for them to exit.
func (hc *hostCluster) stopWorkers() {
	stopAll(hc.t, hc.workers)
	hc.workers = nil
}

// stopAll stops the processes (SIGTERM) and waits for them to exit.
func stopAll(t testing.TB, ps []*testenv.Process) {
	t.Helper()
	for _, p := range ps {
		p.Signal(syscall.SIGTERM)
	}
	for _, p := range ps {
		if !p.WaitExit(15 * time.Second) {
			t.Fatalf("a worker did not stop in 15s:\n%s", p.Log())
		}
	}
}

// relay serves listen inside h's namespace and forwards every connection to target there,
// delivering each byte delay after it was read, in both directions: a one-way latency of delay
// into the host, standing in for netem where the kernel has none. Bytes counts what it forwarded.
type relay struct {
	Bytes atomic.Int64
	lis   net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// maxQueued bounds the chunks held for delivery per direction (64 KiB each).
const maxQueued = 1024

func startRelay(t testing.TB, h *testenv.Host, listen, target string, delay time.Duration) *relay {
	t.Helper()
	lis, err := h.Listen(listen)
	if err != nil {
		t.Fatalf("relay on %s in %s: %v", listen, h.Name, err)
	}
	r := &relay{lis: lis}
	// The accept loop and the pumps belong to the relay; closing the listener and the
	// connections at cleanup ends them all.
	t.Cleanup(func() {
		lis.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := h.Dial(target, 5*time.Second)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			go r.pump(in, out, delay)
			go r.pump(out, in, delay)
		}
	}()
	return r
}

type chunk struct {
	due  time.Time
	data []byte
}

func (r *relay) pump(src, dst net.Conn, delay time.Duration) {
	q := make(chan chunk, maxQueued)
	go func() {
		defer dst.Close()
		for c := range q {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				return
			}
			r.Bytes.Add(int64(len(c.data)))
		}
	}()
	defer close(q)
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{due: time.Now().Add(delay), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}

// checkAddresses fails the test unless every member of every generation in evs advertised the
// address of the host it runs on (want: worker id → host address), never a loopback address.
func checkAddresses(t *testing.T, evs []*trainingv1.StreamJobProgressResponse, want map[string]string) {
	t.Helper()
	seen := 0
	for _, e := range evs {
		for _, m := range e.GetMembership().GetMembers() {
			seen++
			host, _, err := net.SplitHostPort(m.GetAddress())
			if err != nil {
				t.Fatalf("member %s: address %q: %v", m.GetWorkerId(), m.GetAddress(), err)
			}
			if ip := net.ParseIP(host); ip == nil || ip.IsLoopback() || strings.HasPrefix(host, "localhost") {
				t.Fatalf("member %s advertised %s: a loopback or unresolved address", m.GetWorkerId(), m.GetAddress())
			}
			if host != want[m.GetWorkerId()] {
				t.Fatalf("member %s advertised %s, want its namespace's address %s", m.GetWorkerId(), m.GetAddress(), want[m.GetWorkerId()])
			}
		}
	}
	if seen == 0 {
		t.Fatal("no membership event named any member")
	}
}

// checkRegistered waits until Consul, in the root namespace, passes the health check of every
// worker of want (it reaches each one at its advertised address), then fails the test unless each
// is registered at its namespace's address.
func checkRegistered(t *testing.T, hc *hostCluster, want map[string]string) {
	t.Helper()
	var insts []consul.Instance
	testenv.WaitFor(t, 30*time.Second, "the workers passing in Consul", func() bool {
		res, err := consul.Instances(context.Background(), hc.agent.Client, consul.Query{Name: "training-worker"}, 0, 0)
		insts = res.Instances
		return err == nil && len(insts) == len(want)
	})
	hosts := map[string]bool{}
	for _, a := range want {
		hosts[a] = true
	}
	for _, in := range insts {
		if !hosts[in.Address] || in.Meta["address"] != net.JoinHostPort(in.Address, fmt.Sprint(in.Port)) {
			t.Fatalf("worker %s registered at %s:%d (meta address %s), want one of %v", in.ID, in.Address, in.Port, in.Meta["address"], want)
		}
		delete(hosts, in.Address)
	}
}
