package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/tap"

	"github.com/bourse-dev/bourse/pkg/auth"
)

// apiKeyByCopy is how the key used to be read: metadata.FromIncomingContext copies every header.
func apiKeyByCopy(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		if key, ok := strings.CutPrefix(v[0], "Bearer "); ok {
			return strings.TrimSpace(key)
		}
	}
	if v := md.Get("x-api-key"); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// headers like a real client's: grpc-go, otel trace context and baggage, the key.
func benchHeaders() metadata.MD {
	return metadata.Pairs(
		":authority", "127.0.0.1:7004", "content-type", "application/grpc", "user-agent", "grpc-go/1.85.0",
		"te", "trailers", "grpc-timeout", "4999m", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"baggage", "tenant=bourse", "authorization", "Bearer k-payment",
	)
}

// BenchmarkReadKey: the key from the headers as the tap reads it, as the fallback reads it, and as
// it used to be read (a copy of all metadata).
func BenchmarkReadKey(b *testing.B) {
	md := benchHeaders()
	ctx := metadata.NewIncomingContext(context.Background(), md)
	b.Run("tap-headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if keyFromMD(md) != "k-payment" {
				b.Fatal("wrong key")
			}
		}
	})
	b.Run("ValueFromIncomingContext", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if apiKey(ctx) != "k-payment" {
				b.Fatal("wrong key")
			}
		}
	})
	b.Run("FromIncomingContext-copy(before)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if apiKeyByCopy(ctx) != "k-payment" {
				b.Fatal("wrong key")
			}
		}
	})
}

// BenchmarkTap: the whole decision for one call — key lookup in a keyring of 1,000 keys (constant
// time, so it scans all), policy, rate limit — as the tap makes it.
func BenchmarkTap(b *testing.B) {
	spec := "k-payment=service:payment"
	for i := range 999 {
		spec += ",k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i) + "=account:a" + itoa(i)
	}
	keys, err := auth.NewKeySource(spec, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	ic := &interceptors{keys: keys, policy: auth.Policy{"/inference.GRPCInferenceService/ModelInfer": auth.Authenticated}}
	info := &tap.Info{FullMethodName: "/inference.GRPCInferenceService/ModelInfer", Header: benchHeaders()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ic.tap(context.Background(), info); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	n := len(buf)
	for ; i > 0; i /= 10 {
		n--
		buf[n] = byte('0' + i%10)
	}
	return string(buf[n:])
}
