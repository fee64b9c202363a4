// Package checkpoint stores a job's training state — parameters and optimizer state at a step — in
// one file per checkpoint, atomically: written to a temporary file in the same directory, fsynced,
// renamed over its final name, and the directory fsynced, so a crash leaves either the previous
// checkpoint or the new one, never half of one. A SHA-256 over the whole content ends the file; a
// file that fails it, is truncated, or belongs to another job or model shape is refused with
// FailedPrecondition.
//
// Layout (little-endian): magic "BTCKPT01", job id length u32, job id, step u64, param count u64,
// optimizer state count u64, params (float32), optimizer state (float32), SHA-256 of all before.
package checkpoint

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bourse-dev/bourse/pkg/errs"
)

const magic = "BTCKPT01"

// MaxValues bounds the floats a checkpoint may hold (parameters plus optimizer state), so a
// corrupted length cannot make a reader allocate without limit.
const MaxValues = 256 << 20

// State is what a checkpoint holds.
type State struct {
	JobID     string
	Step      uint64
	Params    []float32
	Optimizer []float32
}

// Store keeps the checkpoints of every job under one directory (<dir>/<job>/step-<n>.ckpt),
// keeping the Keep most recent of each job.
type Store struct {
	Dir  string
	Keep int
}

// Path is where job's checkpoint of step lives.
func (s Store) Path(job string, step uint64) string {
	return filepath.Join(s.Dir, job, fmt.Sprintf("step-%012d.ckpt", step))
}

// Write stores st durably and returns its path; older checkpoints beyond Keep are removed.
func (s Store) Write(st State) (string, error) {
	dir := filepath.Join(s.Dir, st.JobID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := s.Path(st.JobID, st.Step)
	if err := writeAtomic(path, Encode(st)); err != nil {
		return "", err
	}
	s.prune(st.JobID)
	return path, nil
}

// Read loads and verifies the checkpoint at path, which must be job's and hold numParams
// parameters (numParams < 0 skips that check).
func Read(path, job string, numParams int) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, errs.Wrap(errs.KindFailedPrecondition, err, "checkpoint %s", filepath.Base(path))
	}
	st, err := Decode(b)
	if err != nil {
		return State{}, errs.Wrap(errs.KindFailedPrecondition, err, "checkpoint %s", filepath.Base(path))
	}
	if st.JobID != job {
		return State{}, errs.New(errs.KindFailedPrecondition, "checkpoint %s belongs to job %q, not %q", filepath.Base(path), st.JobID, job)
	}
	if numParams >= 0 && len(st.Params) != numParams {
		return State{}, errs.New(errs.KindFailedPrecondition, "checkpoint %s holds %d parameters, the job's model has %d", filepath.Base(path), len(st.Params), numParams)
	}
	return st, nil
}

// Encode serialises st with its checksum.
func Encode(st State) []byte {
	b := make([]byte, 0, len(magic)+4+len(st.JobID)+24+4*(len(st.Params)+len(st.Optimizer))+sha256.Size)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(st.JobID)))
	b = append(b, st.JobID...)
	b = binary.LittleEndian.AppendUint64(b, st.Step)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(st.Params)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(st.Optimizer)))
	for _, v := range [][]float32{st.Params, st.Optimizer} {
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// Decode parses and verifies a checkpoint's bytes.
func Decode(b []byte) (State, error) {
	if len(b) < len(magic)+4+24+sha256.Size {
		return State{}, fmt.Errorf("truncated: %d bytes", len(b))
	}
	if string(b[:len(magic)]) != magic {
		return State{}, fmt.Errorf("not a checkpoint (bad magic)")
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); string(got[:]) != string(sum) {
		return State{}, fmt.Errorf("checksum mismatch: the file is corrupted or truncated")
	}
	r := body[len(magic):]
	idLen := int(binary.LittleEndian.Uint32(r))
	r = r[4:]
	if idLen > len(r) || idLen > 256 {
		return State{}, fmt.Errorf("job id length %d is out of range", idLen)
	}
	st := State{JobID: string(r[:idLen])}
	r = r[idLen:]
	if len(r) < 24 {
		return State{}, fmt.Errorf("truncated header")
	}
	st.Step = binary.LittleEndian.Uint64(r)
	np, no := binary.LittleEndian.Uint64(r[8:]), binary.LittleEndian.Uint64(r[16:])
	r = r[24:]
	if np > MaxValues || no > MaxValues || uint64(len(r)) != 4*(np+no) {
		return State{}, fmt.Errorf("%d parameters and %d optimizer values do not match the %d bytes of data", np, no, len(r))
	}
	st.Params = floats(r[:4*np])
	st.Optimizer = floats(r[4*np:])
	return st, nil
}

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable only once the directory entry is.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// List returns job's checkpoint steps, oldest first.
func (s Store) List(job string) []uint64 {
	entries, err := os.ReadDir(filepath.Join(s.Dir, job))
	if err != nil {
		return nil
	}
	var steps []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "step-") || !strings.HasSuffix(name, ".ckpt") {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, "step-"), ".ckpt"), 10, 64); err == nil {
			steps = append(steps, n)
		}
	}
	slices.Sort(steps)
	return steps
}

func (s Store) prune(job string) {
	keep := max(s.Keep, 1)
	steps := s.List(job)
	for _, step := range steps[:max(0, len(steps)-keep)] {
		_ = os.Remove(s.Path(job, step))
	}
}
