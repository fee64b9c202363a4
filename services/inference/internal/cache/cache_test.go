package cache

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

func sample() []tensor.Tensor {
	return []tensor.Tensor{
		{Name: "y", Datatype: tensor.Int64, Shape: []int64{2}, Data: []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}},
		{Name: "p", Datatype: tensor.FP32, Shape: []int64{1, 1}, Data: []byte{0, 0, 128, 63}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	in := sample()
	out, err := Decode(Encode(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d tensors back, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Name != in[i].Name || out[i].Datatype != in[i].Datatype || !tensor.ShapeEqual(out[i].Shape, in[i].Shape) || !bytes.Equal(out[i].Data, in[i].Data) {
			t.Fatalf("tensor %d: %+v, want %+v", i, out[i], in[i])
		}
	}
	b := Encode(in)
	if _, err := Decode(b[:len(b)-1]); err == nil {
		t.Fatal("truncated entry decoded")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(sample()))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must be internally consistent and survive a re-encode unchanged.
		for _, x := range ts {
			if err := tensor.CheckBytes(x.Datatype, x.Shape, x.Data); err != nil {
				t.Fatalf("decoded an inconsistent tensor: %v", err)
			}
		}
		again, err := Decode(Encode(ts))
		if err != nil || len(again) != len(ts) {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		for i := range ts {
			if again[i].Name != ts[i].Name || again[i].Datatype != ts[i].Datatype ||
				!tensor.ShapeEqual(again[i].Shape, ts[i].Shape) || !bytes.Equal(again[i].Data, ts[i].Data) {
				t.Fatalf("tensor %d changed in a round trip", i)
			}
		}
	})
}

func TestKeyDependsOnEverything(t *testing.T) {
	in := []tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{1}, Data: []byte{0, 0, 128, 63}}}
	base := Key("m", "1", in, nil)
	if base != Key("m", "1", in, nil) {
		t.Fatal("key is not deterministic")
	}
	changed := []tensor.Tensor{{Name: "x", Datatype: tensor.FP32, Shape: []int64{1}, Data: []byte{0, 0, 0, 64}}}
	for name, k := range map[string]string{
		"model": Key("n", "1", in, nil), "version": Key("m", "2", in, nil),
		"bytes": Key("m", "1", changed, nil), "outputs": Key("m", "1", in, []string{"y"}),
		// "m"+"1x" vs "m1"+"x": lengths are part of the key.
		"boundaries": Key("m1", "", in, nil),
	} {
		if k == base {
			t.Errorf("key ignores the %s", name)
		}
	}
}

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	c := NewLRU(30) // room for three 10-byte entries (1-byte key + 9-byte value)
	val := make([]byte, 9)
	for _, k := range []string{"a", "b", "c"} {
		c.Set(ctx, k, val)
	}
	if _, ok := c.Get(ctx, "a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.Set(ctx, "d", val)
	if _, ok := c.Get(ctx, "b"); ok {
		t.Fatal("b survived although least recently used")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := c.Get(ctx, k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	c.Set(ctx, "huge", make([]byte, 100))
	if _, ok := c.Get(ctx, "huge"); ok || c.Len() != 3 {
		t.Fatal("an entry larger than the cache was kept")
	}
}

func TestRedisSharesEntriesAndTieredFillsTheLRU(t *testing.T) {
	url := testenv.StartRedis(t)
	ctx := context.Background()
	r, err := NewRedis(ctx, url, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	other, err := NewRedis(ctx, url, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	value := Encode(sample())
	Tiered{NewLRU(1 << 20), r}.Set(ctx, "k", value)
	// A second replica (its own LRU, same Redis) finds it, and keeps it locally afterwards.
	lru := NewLRU(1 << 20)
	tiers := Tiered{lru, other}
	got, ok := tiers.Get(ctx, "k")
	if !ok || !bytes.Equal(got, value) {
		t.Fatalf("replica missed the shared entry (ok=%v)", ok)
	}
	if _, ok := lru.Get(ctx, "k"); !ok {
		t.Fatal("a Redis hit did not fill the local LRU")
	}
	if _, ok := tiers.Get(ctx, "absent"); ok {
		t.Fatal("hit for a key never set")
	}
}

func TestRedisDownIsAMiss(t *testing.T) {
	url := testenv.StartRedis(t)
	r, err := NewRedis(context.Background(), url, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // every command now fails
	r.Set(context.Background(), "k", []byte("v"))
	if _, ok := r.Get(context.Background(), "k"); ok {
		t.Fatal("a closed client reported a hit")
	}
}
