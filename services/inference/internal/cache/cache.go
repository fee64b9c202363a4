// Package cache keeps inference responses keyed by model, version and the exact input bytes: an
// in-process LRU, optionally backed by Redis so replicas share hits.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// Cache stores encoded responses. Implementations are safe for concurrent use; a failing store
// reports a miss rather than an error, because a cache must never fail an inference.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool)
	Set(ctx context.Context, key string, value []byte)
}

// Key identifies a request's answer: the model version, every input (name, datatype, shape and
// bytes) and the outputs asked for.
func Key(model, version string, inputs []tensor.Tensor, outputs []string) string {
	h := sha256.New()
	var buf [8]byte
	writeString := func(s string) {
		binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	writeString(model)
	writeString(version)
	for _, in := range inputs {
		writeString(in.Name)
		h.Write([]byte{byte(in.Datatype), byte(len(in.Shape))})
		for _, d := range in.Shape {
			binary.LittleEndian.PutUint64(buf[:], uint64(d))
			h.Write(buf[:])
		}
		binary.LittleEndian.PutUint64(buf[:], uint64(len(in.Data)))
		h.Write(buf[:])
		h.Write(in.Data)
	}
	for _, o := range outputs {
		writeString(o)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Tiered looks in each cache in order and fills the earlier ones on a later hit.
type Tiered []Cache

// Get implements Cache.
func (t Tiered) Get(ctx context.Context, key string) ([]byte, bool) {
	for i, c := range t {
		if v, ok := c.Get(ctx, key); ok {
			for _, earlier := range t[:i] {
				earlier.Set(ctx, key, v)
			}
			return v, true
		}
	}
	return nil, false
}

// Set implements Cache.
func (t Tiered) Set(ctx context.Context, key string, value []byte) {
	for _, c := range t {
		c.Set(ctx, key, value)
	}
}
