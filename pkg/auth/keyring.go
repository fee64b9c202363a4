package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// Keyring maps API keys (by digest) to identities.
type Keyring struct {
	entries []keyEntry
	// byDigest indexes entries. A map lookup's timing depends on the digest of the presented key,
	// which tells an attacker nothing about any configured key (finding a key from its digest is a
	// preimage attack), so the lookup need not scan every entry in constant time; a scan of 1,000
	// keys cost ~70µs per call.
	byDigest map[[sha256.Size]byte]Identity
}

type keyEntry struct {
	digest [sha256.Size]byte
	id     Identity
}

var subjectPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseKeyring reads "key=role:subject" entries separated by commas, e.g.
// "dev-admin=admin:ops,service-key=service:matching,dev-alice=account:alice". A key may be given as
// "sha256:<hex>" so that the plain key need not be stored in configuration. A key named twice is
// refused: the second entry would silently decide who the key is.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{byDigest: map[[sha256.Size]byte]Identity{}}
	for i, item := range strings.Split(spec, ",") {
		if err := k.add(item); err != nil {
			return nil, fmt.Errorf("api key entry %d: %w", i+1, err)
		}
	}
	return k, nil
}

// ParseKeyFile reads a key file: one "key=role:subject" entry per line; blank lines and lines starting
// with '#' are ignored. This is the format of --api-keys-file and of a Kubernetes Secret mounted as a
// file (one Secret per service, so each service holds only the keys of its own callers).
func ParseKeyFile(content string) (*Keyring, error) {
	k := &Keyring{byDigest: map[[sha256.Size]byte]Identity{}}
	for i, line := range strings.Split(content, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "#") {
			continue
		}
		if err := k.add(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return k, nil
}

// Merge returns a keyring with the keys of both; a key in both is refused.
func (k *Keyring) Merge(o *Keyring) (*Keyring, error) {
	out := &Keyring{byDigest: map[[sha256.Size]byte]Identity{}}
	for _, e := range append(append([]keyEntry(nil), k.entries...), o.entries...) {
		if owner, dup := out.byDigest[e.digest]; dup {
			return nil, fmt.Errorf("a key of %s is also configured for %s", e.id, owner)
		}
		out.entries = append(out.entries, e)
		out.byDigest[e.digest] = e.id
	}
	return out, nil
}

func (k *Keyring) add(item string) error {
	item = strings.TrimSpace(item)
	if item == "" {
		return nil
	}
	key, rest, ok := strings.Cut(item, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("want key=role:subject")
	}
	roleName, subject, ok := strings.Cut(strings.TrimSpace(rest), ":")
	if !ok || !subjectPattern.MatchString(subject) {
		return fmt.Errorf("want role:subject with subject matching %s", subjectPattern)
	}
	role, ok := ParseRole(roleName)
	if !ok {
		// Not quoted: with a key that contains "=", what stands here is part of the key.
		return fmt.Errorf("the role is not admin, service or account (a key may not contain \"=\")")
	}
	digest, err := keyDigest(key)
	if err != nil {
		return err
	}
	id := Identity{Role: role, Subject: subject}
	if owner, dup := k.byDigest[digest]; dup {
		// Neither the key nor its digest goes into the error: it ends up in logs.
		return fmt.Errorf("the key for %s is already configured for %s", id, owner)
	}
	k.entries = append(k.entries, keyEntry{digest: digest, id: id})
	k.byDigest[digest] = id
	return nil
}

func keyDigest(key string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if hexDigest, ok := strings.CutPrefix(key, "sha256:"); ok {
		raw, err := hex.DecodeString(hexDigest)
		if err != nil || len(raw) != sha256.Size {
			return d, fmt.Errorf("sha256 digest must be %d hex digits", 2*sha256.Size)
		}
		copy(d[:], raw)
		return d, nil
	}
	return sha256.Sum256([]byte(key)), nil
}

// Len is the number of keys.
func (k *Keyring) Len() int { return len(k.entries) }

// Lookup finds the identity for a presented key.
func (k *Keyring) Lookup(key string) (Identity, bool) {
	id, ok := k.byDigest[sha256.Sum256([]byte(key))]
	return id, ok
}

// ReadKey reads a client key file: the first line that is neither blank nor a '#' comment. This is how
// a service gets the key it presents to another (e.g. matching's key for risk) without the key
// appearing in its command line or environment.
func ReadKey(path string) (string, error) {
	b, err := readBounded(path)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line, nil
		}
	}
	return "", fmt.Errorf("%s holds no key", path)
}

// maxKeyFileBytes bounds what a key file may hold (about 10,000 entries): a wrong path (a log, a
// device) fails instead of being read into memory.
const maxKeyFileBytes = 1 << 20

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxKeyFileBytes)
	}
	return b, nil
}
