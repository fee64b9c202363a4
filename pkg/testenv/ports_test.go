package testenv

import (
	"bufio"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// takenFirst makes the first port chosen be port, which something else holds, as if another
// process had bound it between FreePort's probe and the tool's bind.
func takenFirst(t *testing.T, port int) *atomic.Int32 {
	var picks atomic.Int32
	pickPort = func(t testing.TB) int {
		if picks.Add(1) == 1 {
			return port
		}
		return FreePort(t)
	}
	t.Cleanup(func() { pickPort = FreePort })
	return &picks
}

func listen(t *testing.T) (net.Listener, int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, l.Addr().(*net.TCPAddr).Port
}

// Consul's HTTP port is taken after it was chosen: by a plain listener, and by another Consul agent
// (which answers the leader query on that port while the new agent is failing to bind). Each start
// is retried with fresh ports, and the agent returned is the new one.
func TestStartConsulRetriesWhenAPortIsTaken(t *testing.T) {
	t.Run("by a listener", func(t *testing.T) {
		_, port := listen(t)
		picks := takenFirst(t, port)
		a := StartConsul(t)
		if a.Addr == fmt.Sprintf("127.0.0.1:%d", port) || picks.Load() < 8 {
			t.Fatalf("agent on %s after %d port picks: the start was not retried with fresh ports", a.Addr, picks.Load())
		}
		if leader, err := a.Client.Status().Leader(); err != nil || leader == "" {
			t.Fatalf("the retried agent has no leader: %q %v", leader, err)
		}
	})
	t.Run("by another agent", func(t *testing.T) {
		other := StartConsul(t)
		otherName, err := other.Client.Agent().NodeName()
		if err != nil {
			t.Fatal(err)
		}
		_, portText, _ := strings.Cut(other.Addr, ":")
		var port int
		fmt.Sscan(portText, &port)
		takenFirst(t, port)
		a := StartConsul(t)
		name, err := a.Client.Agent().NodeName()
		if err != nil {
			t.Fatal(err)
		}
		if a.Addr == other.Addr || name == otherName {
			t.Fatalf("StartConsul returned the agent that held the port (%s, node %s)", a.Addr, name)
		}
	})
}

// redis-server's port is taken after it was chosen: the start is retried with a fresh port.
func TestStartRedisRetriesWhenThePortIsTaken(t *testing.T) {
	_, port := listen(t)
	picks := takenFirst(t, port)
	url := StartRedis(t)
	if strings.Contains(url, fmt.Sprintf(":%d/", port)) || picks.Load() < 2 {
		t.Fatalf("redis at %s after %d port picks: the start was not retried", url, picks.Load())
	}
	c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "+PONG") {
		t.Fatalf("the retried redis answered PING with %q, %v", line, err)
	}
}

// postgres's port is taken after it was chosen: the server is started again on a fresh port, on
// the same data directory.
func TestStartPostgresRetriesWhenThePortIsTaken(t *testing.T) {
	_, port := listen(t)
	picks := takenFirst(t, port)
	url := StartPostgres(t)
	if strings.Contains(url, fmt.Sprintf(":%d/", port)) || picks.Load() < 2 {
		t.Fatalf("postgres at %s after %d port picks: the start was not retried", url, picks.Load())
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the retried postgres: %v", err)
	}
}
