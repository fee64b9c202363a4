package testenv

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/client"
	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
)

// AcquirerPkg is the simulated acquirer's main package.
const AcquirerPkg = "github.com/bourse-dev/bourse/services/payment/cmd/acquirer"

// Default keys of a test acquirer: an admin (the test surface) and payment's service identity (the
// processor calls).
const (
	AcquirerAdminKey   = "acquirer-admin"
	AcquirerPaymentKey = "acquirer-payment"
)

// AcquirerOptions configure StartAcquirer.
type AcquirerOptions struct {
	// Consul registers the acquirer there as "acquirer"; nil runs it unregistered.
	Consul *ConsulAgent
	// DataDir holds its SQLite database; empty: a new temporary directory.
	DataDir string
	// GRPCAddr to listen on; empty: a free port. Restart reuses the address of the process before.
	GRPCAddr string
	// Args are more flags, e.g. "--latency=50ms", "--fault-decline=token=tok_bad,code=card_declined".
	Args []string
}

// Acquirer is a running simulated acquirer (services/payment/cmd/acquirer).
type Acquirer struct {
	*Process
	Options AcquirerOptions
	// Admin calls with the admin key: ListOperations, SetFaults, GetStats, and the processor calls.
	Admin acquirerv1.AcquirerServiceClient
}

// StartAcquirer builds and starts the acquirer with the keys AcquirerAdminKey (admin:ops) and
// AcquirerPaymentKey (service:payment), waits until it serves, and stops it when the test ends.
// Processor clients dial a.GRPCAddr (or consul:///acquirer) with AcquirerPaymentKey.
func StartAcquirer(t testing.TB, o AcquirerOptions) *Acquirer {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = filepath.Join(t.TempDir(), "acquirer")
	}
	args := []string{"--data-dir=" + o.DataDir,
		"--api-keys=" + AcquirerAdminKey + "=admin:ops," + AcquirerPaymentKey + "=service:payment"}
	if o.Consul != nil {
		args = append(args, "--consul-addr="+o.Consul.Addr, "--check-interval=1s")
	} else {
		args = append(args, "--register=false")
	}
	if o.GRPCAddr != "" {
		args = append(args, "--grpc-addr="+o.GRPCAddr) // the last --grpc-addr wins
	}
	p := StartService(t, Build(t, AcquirerPkg), nil, append(args, o.Args...)...)
	conn, err := client.Dial(p.GRPCAddr, client.Options{APIKey: AcquirerAdminKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	o.GRPCAddr = p.GRPCAddr
	return &Acquirer{Process: p, Options: o, Admin: acquirerv1.NewAcquirerServiceClient(conn)}
}

// Kill ends the process with SIGKILL (no drain, nothing flushed beyond what it fsynced) and waits
// for it to exit.
func (a *Acquirer) Kill(t testing.TB) {
	t.Helper()
	a.Signal(syscall.SIGKILL)
	if !a.WaitExit(10 * time.Second) {
		t.Fatal("acquirer did not exit after SIGKILL")
	}
}

// Restart starts a new process on the same data directory and address, with args replacing the
// extra flags when given. The process before must have exited (Kill, or SIGTERM and WaitExit).
func (a *Acquirer) Restart(t testing.TB, args ...string) *Acquirer {
	t.Helper()
	o := a.Options
	if args != nil {
		o.Args = args
	}
	return StartAcquirer(t, o)
}
