package auth

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func writeKeys(t *testing.T, path, content string) {
	t.Helper()
	// Like a Kubernetes Secret update: write elsewhere, then swap in one rename.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestKeySourceReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, path, "old-m=service:matching\n")
	var logs strings.Builder
	s, err := NewKeySource("adm=admin:ops", path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	has := func(key string) bool { _, ok := s.Keyring().Lookup(key); return ok }
	if !has("adm") || !has("old-m") {
		t.Fatal("inline and file keys not both loaded")
	}
	// Rotation: the new key joins, then the old one leaves.
	writeKeys(t, path, "old-m=service:matching\nnew-m=service:matching\n")
	if changed, err := s.Reload(); err != nil || !changed || !has("new-m") || !has("old-m") {
		t.Fatalf("overlap: changed=%v err=%v", changed, err)
	}
	writeKeys(t, path, "new-m=service:matching\n")
	if _, err := s.Reload(); err != nil || has("old-m") || !has("new-m") || !has("adm") {
		t.Fatalf("old key still valid after rotation (err %v)", err)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Errorf("unchanged file reloaded: %v %v", changed, err)
	}
	// Bad files keep the keyring in force: a syntax error, a duplicate, a clash with --api-keys, a missing file.
	for _, bad := range []string{"new-m=service:matching\nbroken line\n", "new-m=service:matching\nnew-m=account:x\n", "adm=account:mallory\n"} {
		writeKeys(t, path, bad)
		if _, err := s.Reload(); err == nil {
			t.Errorf("accepted %q", bad)
		} else if strings.Contains(err.Error(), "new-m") || strings.Contains(err.Error(), "adm=") {
			t.Errorf("error %q shows a key", err)
		}
		if !has("new-m") || !has("adm") || has("mallory") {
			t.Fatalf("a bad file %q changed the keyring", bad)
		}
	}
	os.Remove(path)
	if _, err := s.Reload(); err == nil || !has("new-m") {
		t.Errorf("missing file: err=%v, keys kept=%v", err, has("new-m"))
	}
	if _, err := NewKeySource("", path, slog.Default()); err == nil {
		t.Error("a missing key file at start was accepted")
	}
}

// Watch picks up a changed file by itself and answers SIGHUP; a bad file logs and keeps the keys.
func TestKeySourceWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, path, "k1=account:alice\n")
	var logs syncBuilder
	s, err := NewKeySource("", path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx, 20*time.Millisecond, hup) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5s; log:\n%s", what, logs.String())
			}
		}
	}
	writeKeys(t, path, "k2=account:alice\n")
	waitFor("file change picked up", func() bool { _, ok := s.Keyring().Lookup("k2"); return ok })
	writeKeys(t, path, "k2=account:alice\nnot a key\n")
	waitFor("bad file logged", func() bool { return strings.Contains(logs.String(), "keeping the previous keys") })
	if _, ok := s.Keyring().Lookup("k2"); !ok {
		t.Fatal("a bad file dropped the keys in force")
	}
	hup <- syscall.SIGHUP
	waitFor("SIGHUP answered", func() bool { return strings.Count(logs.String(), "keeping the previous keys") >= 2 })
	if strings.Contains(logs.String(), "k2=") {
		t.Error("the log holds a key")
	}
}

type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestKeyFileFollowsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "risk.key")
	writeKeys(t, path, "# matching's key for risk\nkey-1\n")
	f, err := OpenKeyFile(path, 0, slog.New(slog.NewTextHandler(&strings.Builder{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Key() != "key-1" {
		t.Fatalf("key %q", f.Key())
	}
	writeKeys(t, path, "key-2-longer\n")
	if f.Key() != "key-2-longer" {
		t.Fatalf("after rotation: %q", f.Key())
	}
	md, _ := f.GetRequestMetadata(context.Background())
	if md["authorization"] != "Bearer key-2-longer" {
		t.Fatalf("metadata %v", md)
	}
	writeKeys(t, path, "# emptied by mistake\n")
	if f.Key() != "key-2-longer" {
		t.Fatalf("an empty file replaced the key: %q", f.Key())
	}
	os.Remove(path)
	if f.Key() != "key-2-longer" {
		t.Fatal("a vanished file dropped the key")
	}
	if _, err := OpenKeyFile(path, 0, slog.Default()); err == nil {
		t.Error("a missing file at start was accepted")
	}
}

func TestKeyFilesAreBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge")
	writeKeys(t, path, "k=account:a\n"+strings.Repeat("#", maxKeyFileBytes))
	if _, err := NewKeySource("", path, slog.Default()); err == nil {
		t.Error("a key file over the bound was read")
	}
	if _, err := ReadKey(path); err == nil {
		t.Error("a client key file over the bound was read")
	}
}
