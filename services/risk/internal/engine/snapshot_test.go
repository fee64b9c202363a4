package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// rebuild makes an engine the way a restart does: the snapshot (if any), then the events after it,
// then the open reservations of h's engine.
func (h *harness) rebuild(snap []byte) *Engine {
	h.t.Helper()
	fresh, err := New(walkConfig)
	must(h.t, err)
	var from uint64
	if snap != nil {
		must(h.t, fresh.LoadSnapshot(snap))
		from = fresh.LastSeq()
	}
	for _, ev := range h.events {
		if ev.Seq <= from {
			continue
		}
		if err := fresh.Apply(ev); err != nil {
			h.t.Fatalf("replay after the snapshot at %d: %v", from, err)
		}
	}
	for _, r := range h.openReservations() {
		must(h.t, fresh.RestoreReservation(RestoredReservation{ID: r.ID, Account: r.account, Symbol: r.Symbol, Side: r.Side, Price: r.Price, Qty: r.Qty}))
	}
	return fresh
}

func sameEngines(t testing.TB, what string, want, got *Engine) {
	t.Helper()
	ws, gs := (&harness{t: t, e: want}).snapshot(), (&harness{t: t, e: got}).snapshot()
	if !reflect.DeepEqual(ws, gs) {
		for i := range ws.Accounts {
			if i < len(gs.Accounts) && !reflect.DeepEqual(ws.Accounts[i], gs.Accounts[i]) {
				t.Fatalf("%s: account differs:\nwant %+v\ngot  %+v", what, ws.Accounts[i], gs.Accounts[i])
			}
		}
		t.Fatalf("%s: engine differs:\nwant %+v\ngot  %+v", what, ws, gs)
	}
	if !maps.Equal(want.execs, got.execs) || !maps.Equal(want.refs, got.refs) || !maps.Equal(want.settle.streams, got.settle.streams) {
		t.Fatalf("%s: idempotency records differ", what)
	}
	_, wb, err := want.Snapshot()
	must(t, err)
	_, gb, err := got.Snapshot()
	must(t, err)
	if !bytes.Equal(wb, gb) {
		t.Fatalf("%s: snapshots of equal engines differ:\n%s\n%s", what, wb, gb)
	}
}

// TestSnapshotPlusTailEqualsFullReplay: along random walks (checks, fills, releases, transfers,
// limits, kill switches, failing stores), a snapshot taken at a random step of the live engine —
// with reservations open — plus the events after it rebuilds exactly the engine a full replay
// rebuilds, and exactly the live one.
func TestSnapshotPlusTailEqualsFullReplay(t *testing.T) {
	seeds, steps := 24, 1000
	if testing.Short() {
		seeds, steps = 6, 400
	}
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 0x5a5a))
		h := newHarness(t, randChooser{r})
		cuts := map[int]bool{r.IntN(steps): true, r.IntN(steps): true, 0: seed%4 == 0}
		var snaps [][]byte
		for i := range steps {
			if cuts[i] {
				_, data, err := h.e.Snapshot()
				must(t, err)
				snaps = append(snaps, data)
			}
			h.step()
		}
		full := h.rebuild(nil)
		sameEngines(t, fmt.Sprintf("seed %d: full replay", seed), h.e, full)
		for _, snap := range snaps {
			sameEngines(t, fmt.Sprintf("seed %d: snapshot + tail", seed), full, h.rebuild(snap))
		}
		// A snapshot of the final state, with nothing after it.
		_, data, err := h.e.Snapshot()
		must(t, err)
		sameEngines(t, fmt.Sprintf("seed %d: final snapshot", seed), full, h.rebuild(data))
	}
}

func walkSnapshot(t testing.TB, seed uint64, steps int) []byte {
	h := newHarness(t, randChooser{rand.New(rand.NewPCG(seed, 7))})
	for range steps {
		h.step()
	}
	_, data, err := h.e.Snapshot()
	must(t, err)
	return data
}

// frame wraps body in a valid header, so a test can reach the state's own validation.
func frame(seq uint64, body []byte) []byte {
	return fmt.Appendf(nil, "%s %d %d %d %08x\n%s", snapshotMagic, snapshotVersion, seq, len(body), crc32Of(body), body)
}

func crc32Of(b []byte) uint32 { return crc32.Checksum(b, crc32c) }

// TestCorruptSnapshotIsAClearError: every truncation, a flipped byte, a foreign format, state
// this engine does not know and state that contradicts the Config are refused with a reason.
func TestCorruptSnapshotIsAClearError(t *testing.T) {
	data := walkSnapshot(t, 1, 300)
	load := func(b []byte) error {
		e, err := New(walkConfig)
		must(t, err)
		return e.LoadSnapshot(b)
	}
	must(t, load(data))
	for _, n := range []int{0, 1, 10, bytes.IndexByte(data, '\n'), bytes.IndexByte(data, '\n') + 1, len(data) / 2, len(data) - 1} {
		if err := load(data[:n]); err == nil {
			t.Fatalf("snapshot truncated to %d of %d bytes loaded", n, len(data))
		}
	}
	if err := load(data[:len(data)-1]); !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated body: %v", err)
	}
	flipped := bytes.Clone(data)
	flipped[len(flipped)-10] ^= 0x20
	if err := load(flipped); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("flipped byte: %v", err)
	}
	if err := load(append(bytes.Clone(data), '\n')); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if err := load(bytes.Replace(data, []byte(" 1 "), []byte(" 9 "), 1)); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("other version: %v", err)
	}
	body := data[bytes.IndexByte(data, '\n')+1:]
	seq := func() uint64 { d, err := decodeSnapshot(data); must(t, err); return d.Seq }()
	unknown := append([]byte(`{"future_state":1,`), body[1:]...)
	if err := load(frame(seq, unknown)); err == nil || !strings.Contains(err.Error(), "future_state") {
		t.Fatalf("unknown state: %v", err)
	}
	if err := load(frame(seq+1, body)); err == nil || !strings.Contains(err.Error(), "header says") {
		t.Fatalf("seq mismatch: %v", err)
	}
	other, err := New(Config{FeeAccount: "elsewhere", DailyCutoff: walkConfig.DailyCutoff})
	must(t, err)
	if err := other.LoadSnapshot(data); err == nil || !strings.Contains(err.Error(), "fee account") {
		t.Fatalf("another Config's fee account: %v", err)
	}
	used := newFixture(t, Config{FeeAccount: walkConfig.FeeAccount})
	if err := used.LoadSnapshot(data); err == nil {
		t.Fatal("snapshot loaded into an engine that already has state")
	}
	for _, bad := range []string{
		`"total":`, // a transfer total becomes malformed JSON
	} {
		if err := load(frame(seq, bytes.Replace(body, []byte(bad), []byte(`"total":"x",`), 1))); err == nil {
			t.Fatalf("malformed %s accepted", bad)
		}
	}
	negative := bytes.Replace(body, []byte(`"balances":[`), []byte(`"balances":[-5,`), 1)
	if err := load(frame(seq, negative)); err == nil {
		t.Fatal("negative balance accepted")
	}
}

// FuzzSnapshotDecode: no input makes LoadSnapshot panic, and whatever it accepts snapshots back to
// a snapshot it accepts again. The first byte chooses between the raw input and the input framed
// with a valid header, so the state's validation is reached too.
func FuzzSnapshotDecode(f *testing.F) {
	for seed := range uint64(3) {
		data := walkSnapshot(f, seed, 20) // small seeds: the mutator slows down with the input's size
		f.Add(append([]byte{0}, data...))
		f.Add(append([]byte{1}, data[bytes.IndexByte(data, '\n')+1:]...))
		f.Add(append([]byte{0}, data[:len(data)/3]...))
	}
	f.Add([]byte{1, '{', '}'})
	f.Fuzz(checkSnapshotInput)
}

func checkSnapshotInput(t *testing.T, in []byte) {
	if len(in) == 0 {
		return
	}
	data := in[1:]
	if in[0]&1 == 1 {
		var s struct {
			Seq uint64 `json:"seq"`
		}
		_ = json.Unmarshal(data, &s)
		data = frame(s.Seq, data)
	}
	e, err := New(walkConfig)
	must(t, err)
	if e.LoadSnapshot(data) != nil {
		return
	}
	_, again, err := e.Snapshot()
	must(t, err)
	e2, err := New(walkConfig)
	must(t, err)
	if err := e2.LoadSnapshot(again); err != nil {
		t.Fatalf("an accepted snapshot re-encodes to one that is refused: %v", err)
	}
}

// TestSnapshotDecodeMutations runs the fuzz target's check over many random mutations of valid
// snapshots (bytes flipped, cut, duplicated, swapped for JSON punctuation), framed with a valid
// header half of the time so the state's own validation is reached, not just the checksum.
func TestSnapshotDecodeMutations(t *testing.T) {
	rounds := 20_000
	if testing.Short() {
		rounds = 2_000
	}
	r := rand.New(rand.NewPCG(3, 3))
	var seeds [][]byte
	for seed := range uint64(3) {
		data := walkSnapshot(t, seed, 60)
		seeds = append(seeds, append([]byte{0}, data...), append([]byte{1}, data[bytes.IndexByte(data, '\n')+1:]...))
	}
	punct := []byte(`{}[],:"0-9e.tfn `)
	for range rounds {
		in := bytes.Clone(seeds[r.IntN(len(seeds))])
		for range 1 + r.IntN(4) {
			i := 1 + r.IntN(len(in)-1)
			switch r.IntN(4) {
			case 0:
				in[i] = punct[r.IntN(len(punct))]
			case 1:
				in[i] ^= byte(1 << r.IntN(8))
			case 2:
				in = in[:i]
			default:
				j := min(len(in), i+r.IntN(32))
				in = append(in[:j:j], in[i:]...)
			}
			if len(in) < 2 {
				break
			}
		}
		checkSnapshotInput(t, in)
	}
}
