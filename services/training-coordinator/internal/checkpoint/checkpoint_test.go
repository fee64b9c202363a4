package checkpoint

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func sample() State {
	return State{JobID: "job-1", Step: 42, Params: []float32{1, -2.5, float32(math.SmallestNonzeroFloat32), 0}, Optimizer: []float32{0.5, 0.25}}
}

func TestWriteReadRoundTrip(t *testing.T) {
	s := Store{Dir: t.TempDir(), Keep: 2}
	path, err := s.Write(sample())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(path, "job-1", 4)
	if err != nil {
		t.Fatal(err)
	}
	want := sample()
	if got.Step != want.Step || len(got.Params) != 4 || len(got.Optimizer) != 2 {
		t.Fatalf("read %+v", got)
	}
	for i := range want.Params {
		if math.Float32bits(got.Params[i]) != math.Float32bits(want.Params[i]) {
			t.Fatalf("param %d: %v, want %v", i, got.Params[i], want.Params[i])
		}
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want 1", len(entries))
	}
}

// Every single flipped byte and every truncation is detected: the file is refused, never half read.
func TestCorruptedOrTruncatedIsFailedPrecondition(t *testing.T) {
	dir := t.TempDir()
	good := Encode(sample())
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		p := filepath.Join(dir, "flip.ckpt")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(p, "job-1", 4); errs.KindOf(err) != errs.KindFailedPrecondition {
			t.Fatalf("byte %d flipped: err = %v, want FailedPrecondition", i, err)
		}
	}
	for n := range len(good) {
		p := filepath.Join(dir, "short.ckpt")
		if err := os.WriteFile(p, good[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(p, "job-1", 4); errs.KindOf(err) != errs.KindFailedPrecondition {
			t.Fatalf("truncated to %d bytes: err = %v, want FailedPrecondition", n, err)
		}
	}
}

func TestMismatchedIsFailedPrecondition(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	path, err := s.Write(sample())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path, "job-2", 4); errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("other job: %v", err)
	}
	if _, err := Read(path, "job-1", 5); errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("other shape: %v", err)
	}
	if _, err := Read(filepath.Join(s.Dir, "missing"), "job-1", 4); errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("missing file: %v", err)
	}
}

func TestKeepsTheLatest(t *testing.T) {
	s := Store{Dir: t.TempDir(), Keep: 2}
	for step := uint64(1); step <= 5; step++ {
		st := sample()
		st.Step = step
		if _, err := s.Write(st); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.List("job-1"); len(got) != 2 || got[0] != 4 || got[1] != 5 {
		t.Fatalf("kept %v, want [4 5]", got)
	}
}
