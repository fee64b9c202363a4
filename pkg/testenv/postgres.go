package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// StartPostgres runs a private PostgreSQL server on a free loopback port for the test and returns
// the URL of an empty database in it. The server comes from Debian's postgresql package, which is
// installed with apt-get when absent.
func StartPostgres(t testing.TB) string {
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
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM}
		cmd.Dir = dir
		return cmd
	}
	if out, err := asServer("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	return withFreshPorts(t, "postgres", func() (string, error) { return startPostgres(t, asServer, dir, data, sock) })
}

// startPostgres starts the server on data on a fresh port and creates the test database.
func startPostgres(t testing.TB, asServer func(string, ...string) *exec.Cmd, dir, data, sock string) (string, error) {
	port := pickPort(t)
	logPath := filepath.Join(dir, fmt.Sprintf("postgres-%d.log", port))
	srv := asServer("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=100")
	exited := startBackground(t, srv, logPath, syscall.SIGINT) // SIGINT: postgres's fast shutdown

	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The port may be another server's, one that took it first: only this server counts (it
		// exits when its bind fails).
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var served string
		err = db.QueryRowContext(ctx, "SHOW data_directory").Scan(&served)
		cancel()
		if err == nil && served == data {
			break
		}
		select {
		case <-exited:
			return "", exitError("postgres", readFile(logPath))
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("postgres not accepting connections in 30s (%v):\n%s", err, readFile(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := db.Exec("CREATE DATABASE bourse_test"); err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/bourse_test?sslmode=disable", port), nil
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
