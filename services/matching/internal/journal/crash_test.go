package journal

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashDirEnv, when set, turns TestHelperProcess into the appending child
// of TestCrashLosesNothingAcknowledged.
const crashDirEnv = "JOURNAL_CRASH_TEST_DIR"

// crashOptions are shared by the child and the parent; small segments make
// the child rotate while it is killed.
var crashOptions = Options{SegmentSize: 64 << 10}

// TestCrashLosesNothingAcknowledged runs a child process that appends as
// fast as it can and prints every seq whose wait returned, SIGKILLs it,
// and checks the journal: every acknowledged record is there, and seqs run
// from 1 without gaps or duplicates. The rounds share the directory, so
// each child first recovers what the previous one left.
//
// A SIGKILL loses the process, not the page cache, so this checks the
// ordering of writes, acknowledgements and recovery; it cannot check that
// fsync reaches the disk.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	var acked []uint64
	for round := range 3 {
		got := runAndKill(t, dir, 300*time.Millisecond)
		if len(got) == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		acked = append(acked, got...)

		j := openJournal(t, dir, crashOptions)
		recs := replayAll(t, j, 1)
		present := make(map[uint64]bool, len(recs))
		for i, rec := range recs {
			if rec.Seq != uint64(i+1) {
				t.Fatalf("round %d: record %d has seq %d", round, i, rec.Seq)
			}
			if string(rec.Payload) != string(crashPayload(rec.Payload)) {
				t.Fatalf("round %d: seq %d has payload %q", round, rec.Seq, rec.Payload)
			}
			present[rec.Seq] = true
		}
		for _, seq := range acked {
			if !present[seq] {
				t.Fatalf("round %d: acknowledged seq %d is missing; the journal ends at %d", round, seq, len(recs))
			}
		}
		t.Logf("round %d: %d acknowledged, %d in the journal, %d segments",
			round, len(got), len(recs), len(segmentFiles(t, dir)))
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child on dir, kills it after it has run for about
// d since its first acknowledgement, and returns the seqs it acknowledged.
func runAndKill(t *testing.T, dir string, d time.Duration) []uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var acked []uint64
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() { acked, readErr = readAcks(stdout, started) })

	select {
	case <-started:
		time.Sleep(d)
	case <-time.After(10 * time.Second):
		t.Error("the child acknowledged nothing within 10s")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	err = cmd.Wait()
	if status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !status.Signaled() {
		t.Fatalf("the child was not killed: %v", err)
	}
	if readErr != nil {
		t.Fatal(readErr)
	}
	return acked
}

// readAcks parses one seq per line, closing started at the first. A line
// cut short by the kill has no newline and is not an acknowledgement.
func readAcks(r io.Reader, started chan struct{}) ([]uint64, error) {
	br := bufio.NewReader(r)
	var acked []uint64
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			return acked, nil
		}
		if err != nil {
			return acked, err
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(line, "\n"), 10, 64)
		if err != nil {
			return acked, fmt.Errorf("child printed %q", line)
		}
		if len(acked) == 0 {
			close(started)
		}
		acked = append(acked, seq)
	}
}

// crashPayload is what the child appends: a length and filler derived from
// the first byte, so the parent can check a payload without knowing which
// writer produced it.
func crashPayload(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	n := int(p[0])
	out := make([]byte, n+1)
	out[0] = p[0]
	for i := 1; i <= n; i++ {
		out[i] = byte(i) ^ p[0]
	}
	return out
}

// TestHelperProcess is the child of TestCrashLosesNothingAcknowledged. It
// does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		return
	}
	j, err := Open(dir, crashOptions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	var stdout sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			line := make([]byte, 0, 24)
			for i := w; ; i += 8 {
				seq, err := j.AppendSync(crashPayload([]byte{byte(i)}))
				if err != nil {
					fmt.Fprintln(os.Stderr, "helper: append:", err)
					os.Exit(2)
				}
				// One write per line: the parent sees whole lines or a
				// cut-off last one.
				line = strconv.AppendUint(line[:0], seq, 10)
				line = append(line, '\n')
				stdout.Lock()
				os.Stdout.Write(line)
				stdout.Unlock()
			}
		})
	}
	wg.Wait()
}
