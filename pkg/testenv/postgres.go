package testenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// Postgres is a private PostgreSQL server of a test. Kill and Restart crash it and bring it back on
// the same data directory and port, so its clients' URL stays valid and the restart replays its WAL
// (crash recovery), as after a crash of the server's processes (the kernel's page cache survives
// them, so this is not a power loss: what was written but not fsynced is not lost). The test
// goroutine owns it: Kill and Restart are not safe for concurrent use.
type Postgres struct {
	// URL is the empty test database's, valid across restarts.
	URL string

	asServer func(string, ...string) *exec.Cmd
	dir      string
	data     string
	sock     string
	port     int
	starts   int
	srv      *exec.Cmd
	exited   <-chan struct{}
	frozen   []procStat // the backends Freeze stopped
	isFrozen bool
	guard    *exec.Cmd // lets the frozen server go if this process dies frozen (Freeze)
}

// StartPostgres runs a private PostgreSQL server on a free loopback port for the test and returns
// the URL of an empty database in it. The server comes from Debian's postgresql package, which is
// installed with apt-get when absent.
func StartPostgres(t testing.TB) string { return StartPostgresServer(t).URL }

// StartPostgresServer is StartPostgres with a handle on the server, for tests that crash it.
func StartPostgresServer(t testing.TB) *Postgres {
	t.Helper()
	binDir := postgresBinDir(t)
	dir, err := os.MkdirTemp("", "bourse-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The server may run as another user: the directory must be reachable.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	cred := postgresCredential(t)
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	asServer := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(binDir, name), args...)
		// Pdeathsig reaches the postmaster alone; its backends notice it gone and exit.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM}
		cmd.Dir = dir
		return cmd
	}
	if out, err := asServer("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p := &Postgres{asServer: asServer, dir: dir, data: data, sock: sock}
	withFreshPorts(t, "postgres", func() (struct{}, error) {
		p.port = pickPort(t)
		return struct{}{}, p.start(t)
	})
	admin, err := sql.Open("pgx", p.adminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE bourse_test"); err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/bourse_test?sslmode=disable", p.port)
	return p
}

func (p *Postgres) adminURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// start runs the server on p.data and p.port and waits until it accepts connections.
func (p *Postgres) start(t testing.TB) error {
	p.starts++
	logPath := filepath.Join(p.dir, fmt.Sprintf("postgres-%d-%d.log", p.port, p.starts))
	srv := p.asServer("postgres", "-D", p.data, "-p", strconv.Itoa(p.port), "-k", p.sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=100")
	exited := startBackground(t, srv, logPath, syscall.SIGINT) // SIGINT: postgres's fast shutdown
	p.srv, p.exited = srv, exited

	db, err := sql.Open("pgx", p.adminURL())
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The port may be another server's, one that took it first: only this server counts (it
		// exits when its bind fails). A restarted one answers once its crash recovery is done.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var served string
		err = db.QueryRowContext(ctx, "SHOW data_directory").Scan(&served)
		cancel()
		if err == nil && served == p.data {
			return nil
		}
		select {
		case <-exited:
			return exitError("postgres", readFile(logPath))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections in 30s (%v):\n%s", err, readFile(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopPostmaster stops the postmaster with SIGSTOP, so that it forks no more, and lists its
// children once it has stopped; deadline bounds what the caller waits for next.
func (p *Postgres) stopPostmaster(t testing.TB) (pm int, deadline time.Time, backends []procStat) {
	t.Helper()
	pm = p.srv.Process.Pid
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		t.Fatalf("testenv: stopping postgres: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	waitPidStopped(t, pm, deadline)
	backends, err := childrenOf(pm)
	if err != nil {
		t.Fatalf("testenv: postgres's backends: %v", err)
	}
	return pm, deadline, backends
}

// Kill SIGKILLs the server, the postmaster and every backend, and returns once none of them runs any
// more: a restart refuses while a backend of the old server still holds its shared memory.
//
// The backends are the postmaster's children but not of its process group (each makes itself a
// session leader), so they are found as its children: the postmaster is stopped first (it forks no
// more), its children are killed, then the postmaster itself. A backend thus never sees its
// postmaster gone and has no chance to do anything a crash would not let it do.
func (p *Postgres) Kill(t testing.TB) {
	t.Helper()
	pm, deadline, backends := p.stopPostmaster(t)
	for _, b := range backends {
		_ = syscall.Kill(b.pid, syscall.SIGKILL) // one that exited meanwhile is gone already
	}
	// A frozen server is dead now: nothing is left to let go on.
	p.frozen, p.isFrozen = nil, false
	p.stopGuard()
	if err := syscall.Kill(pm, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("testenv: SIGKILL postgres: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Until(deadline)):
		t.Fatal("testenv: postgres did not die of SIGKILL in 10s")
	}
	for _, b := range backends {
		for b.alive() {
			if time.Now().After(deadline) {
				t.Fatalf("testenv: postgres backend %d still running 10s after SIGKILL", b.pid)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// Restart starts the killed server again on its data directory and port and returns once it
// accepts connections, its crash recovery done. Another process may have taken the port while the
// server was down; the start is then tried again for a while, since the clients know only this port.
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	if !hasExited(p.exited) {
		t.Fatal("testenv: postgres restarted while running")
	}
	var err error
	for range bindAttempts {
		if err = p.start(t); err == nil || !errors.Is(err, errPortTaken) {
			break
		}
		t.Logf("testenv: postgres: port %d taken while it was down; trying again", p.port)
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("testenv: postgres restart: %v", err)
	}
}

// Freeze stops the server, the postmaster and every backend, with SIGSTOP: a database that hangs
// rather than fails. Its connections stay open and new ones are accepted by the kernel, but nothing
// answers until Thaw. It returns once every process is stopped: the postmaster first, so that it
// forks no backend after its children are listed.
func (p *Postgres) Freeze(t testing.TB) {
	t.Helper()
	if !p.isFrozen {
		// Before the server's own cleanup, which a stopped server would not answer; registered
		// first, so that a freeze that fails half-way is let go of too.
		t.Cleanup(func() {
			if p.isFrozen {
				p.Thaw(t)
			}
		})
	}
	p.isFrozen = true
	_, deadline, backends := p.stopPostmaster(t)
	p.frozen = backends
	for _, b := range backends {
		_ = syscall.Kill(b.pid, syscall.SIGSTOP)
	}
	for _, b := range backends {
		waitStopped(t, b, deadline)
	}
	p.startGuard(t, backends)
}

// startGuard starts a process of its own session that continues the frozen server if this process
// dies before Thaw (killed, or a -timeout panic, which runs no cleanup): stopped processes would
// stay stopped for ever, holding the server's port and shared memory. The postmaster then takes
// the SIGTERM its parent's death sent it and shuts down. Thaw and Kill stop the guard.
func (p *Postgres) startGuard(t testing.TB, backends []procStat) {
	t.Helper()
	args := []string{"-c", `parent=$1; shift; while kill -0 "$parent" 2>/dev/null; do sleep 0.2; done; kill -CONT "$@" 2>/dev/null`,
		"guard", strconv.Itoa(os.Getpid()), strconv.Itoa(p.srv.Process.Pid)}
	for _, b := range backends {
		args = append(args, strconv.Itoa(b.pid))
	}
	guard := exec.Command("sh", args...)
	guard.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := guard.Start(); err != nil {
		t.Fatalf("testenv: postgres freeze guard: %v", err)
	}
	p.guard = guard
}

// stopGuard ends the guard of a freeze that is over.
func (p *Postgres) stopGuard() {
	if p.guard == nil {
		return
	}
	_ = p.guard.Process.Kill()
	_ = p.guard.Wait()
	p.guard = nil
}

// waitStopped returns once the process p is stopped or gone (a signal to another process is
// delivered asynchronously), failing the test at deadline.
func waitStopped(t testing.TB, p procStat, deadline time.Time) {
	t.Helper()
	for {
		st, ok := readProcStat(p.pid)
		if !ok || st.startTime != p.startTime || st.state == "T" || st.state == "t" || st.state == "Z" || st.state == "X" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: postgres process %d not stopped in 10s (state %s)", p.pid, st.state)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitPidStopped is waitStopped for the process pid, a child of this one (its pid is not reused
// before it is reaped).
func waitPidStopped(t testing.TB, pid int, deadline time.Time) {
	t.Helper()
	if st, ok := readProcStat(pid); ok {
		waitStopped(t, st, deadline)
	}
}

// Thaw lets a frozen server go on where it stopped.
func (p *Postgres) Thaw(t testing.TB) {
	t.Helper()
	p.stopGuard()
	for _, b := range p.frozen {
		if b.alive() {
			_ = syscall.Kill(b.pid, syscall.SIGCONT)
		}
	}
	p.frozen, p.isFrozen = nil, false
	if err := syscall.Kill(p.srv.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatalf("testenv: continuing postgres: %v", err)
	}
}

// procStat is what Kill reads of /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	state     string
	startTime string // since boot: tells the process from a later one with its pid
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	// pid (comm) state ppid pgrp ... starttime (field 22): comm may hold spaces and parentheses,
	// so the fields are read after the last ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return procStat{pid: pid, ppid: ppid, state: f[0], startTime: f[19]}, true
}

// alive reports whether the process still runs. A killed backend's parent is gone, so it is
// reparented and may stay a zombie for a while; a zombie holds nothing (its memory, the attachment
// to the shared segment among it, is released at exit), so it does not count.
func (p procStat) alive() bool {
	now, ok := readProcStat(p.pid)
	return ok && now.startTime == p.startTime && now.state != "Z" && now.state != "X"
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) ([]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procStat
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(n); ok && st.ppid == pid {
			out = append(out, st)
		}
	}
	return out, nil
}

// postgresCredential is the postgres account when running as root (initdb refuses root), else nil.
func postgresCredential(t testing.TB) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root but no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// postgresBinDir finds the newest installed server, installing Debian's package if there is none.
func postgresBinDir(t testing.TB) string {
	t.Helper()
	find := func() string {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
		if len(matches) == 0 {
			return ""
		}
		return filepath.Dir(matches[len(matches)-1])
	}
	if dir := find(); dir != "" {
		return dir
	}
	aptInstall(t, "postgresql")
	if dir := find(); dir != "" {
		return dir
	}
	t.Fatal("postgresql installed but no server binary under /usr/lib/postgresql")
	return ""
}

// aptInstall installs Debian packages, one test process at a time.
func aptInstall(t testing.TB, packages ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("%v missing and not root: install them with apt-get", packages)
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "bourse-apt.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, packages...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %v: %v\n%s", args, err, out)
		}
	}
}
