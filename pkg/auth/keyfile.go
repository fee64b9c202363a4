package auth

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// KeyFile is the key a service presents to another, read from a file and re-read when the file
// changes, so a client key rotates without a restart. It is a gRPC per-call credential
// (credentials.PerRPCCredentials): pass it as client.Options.Credentials.
type KeyFile struct {
	path  string
	every time.Duration
	log   *slog.Logger

	key     atomic.Pointer[string]
	checked atomic.Int64 // unix nanos of the last look at the file
	mu      sync.Mutex   // one re-read at a time; others keep sending the current key
	modTime time.Time
	size    int64
}

// OpenKeyFile reads the key now (it must be there) and at most every interval afterwards, when the
// file's modification time or size changed. A file that becomes unreadable or empty keeps the key
// in use and logs why.
func OpenKeyFile(path string, interval time.Duration, log *slog.Logger) (*KeyFile, error) {
	f := &KeyFile{path: path, every: interval, log: log}
	key, err := ReadKey(path)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil {
		f.modTime, f.size = st.ModTime(), st.Size()
	}
	f.key.Store(&key)
	f.checked.Store(time.Now().UnixNano())
	return f, nil
}

// Key is the key to send now.
func (f *KeyFile) Key() string {
	if now := time.Now().UnixNano(); now-f.checked.Load() >= int64(f.every) && f.mu.TryLock() {
		f.checked.Store(now)
		f.refresh()
		f.mu.Unlock()
	}
	return *f.key.Load()
}

func (f *KeyFile) refresh() {
	st, err := os.Stat(f.path)
	if err != nil {
		f.log.Error("client key file unreadable; keeping the key in use", "path", f.path, "err", err)
		return
	}
	if st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return
	}
	key, err := ReadKey(f.path)
	if err != nil {
		f.log.Error("client key file unreadable; keeping the key in use", "path", f.path, "err", err)
		return
	}
	f.modTime, f.size = st.ModTime(), st.Size()
	if key != *f.key.Load() {
		f.key.Store(&key)
		f.log.Info("client key reloaded", "path", f.path)
	}
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (f *KeyFile) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + f.Key()}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: keys may cross plaintext
// loopback (make run); between hosts turn on mutual TLS.
func (*KeyFile) RequireTransportSecurity() bool { return false }
