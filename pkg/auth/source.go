package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// KeySource is the keyring a server checks calls against: the keys given inline (--api-keys) plus
// those in a key file (--api-keys-file), which can be rotated without a restart. A reload that fails
// (unreadable file, bad line, duplicate key) keeps the keyring in use and reports the error, so a
// botched edit never locks every caller out.
type KeySource struct {
	inline *Keyring
	path   string
	log    *slog.Logger
	cur    atomic.Pointer[Keyring]

	mu   sync.Mutex // serialises reloads
	last [sha256.Size]byte
}

// NewKeySource parses spec and, when path is set, the key file; both must be valid at start.
func NewKeySource(spec, path string, log *slog.Logger) (*KeySource, error) {
	inline, err := ParseKeyring(spec)
	if err != nil {
		return nil, fmt.Errorf("--api-keys: %w", err)
	}
	s := &KeySource{inline: inline, path: path, log: log}
	s.cur.Store(inline)
	if path != "" {
		if _, err := s.Reload(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Keyring is the keyring in force; callers must not keep it across calls.
func (s *KeySource) Keyring() *Keyring { return s.cur.Load() }

// Reload reads the key file again and swaps the keyring if the file changed. It reports whether it
// swapped; on error the previous keyring stays.
func (s *KeySource) Reload() (bool, error) {
	if s.path == "" {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := readBounded(s.path)
	if err != nil {
		return false, fmt.Errorf("--api-keys-file: %w", err)
	}
	sum := sha256.Sum256(b)
	if sum == s.last {
		return false, nil
	}
	fromFile, err := ParseKeyFile(string(b))
	if err != nil {
		return false, fmt.Errorf("--api-keys-file %s: %w", s.path, err)
	}
	k, err := s.inline.Merge(fromFile)
	if err != nil {
		return false, fmt.Errorf("--api-keys-file %s against --api-keys: %w", s.path, err)
	}
	s.cur.Store(k)
	s.last = sum
	return true, nil
}

// Watch reloads on every value from hup (SIGHUP) and whenever the file's content changes, checked
// every interval (a Kubernetes Secret volume swaps a symlink, which no single-file event reports
// reliably; reading a small file every few seconds is cheap and sees every kind of update). It
// returns when ctx ends; the caller owns the goroutine it runs in.
func (s *KeySource) Watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal) {
	if s.path == "" {
		return
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	lastErr := ""
	for {
		why := "file changed"
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-hup:
			why = "SIGHUP"
		}
		changed, err := s.Reload()
		switch {
		case err != nil:
			// Poll-driven retries of the same bad file log once; a SIGHUP always answers.
			if err.Error() != lastErr || why == "SIGHUP" {
				s.log.Error("reloading API keys failed; keeping the previous keys", "trigger", why, "err", err)
			}
			lastErr = err.Error()
		case changed:
			lastErr = ""
			s.log.Info("reloaded API keys", "trigger", why, "keys", s.Keyring().Len())
		case why == "SIGHUP":
			s.log.Info("API keys unchanged", "trigger", why, "keys", s.Keyring().Len())
		}
	}
}
