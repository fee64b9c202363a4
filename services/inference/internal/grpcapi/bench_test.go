package grpcapi

import (
	"testing"

	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
)

// BenchmarkDecodeInfer is the per-request cost of checking and decoding a ModelInferRequest.
func BenchmarkDecodeInfer(b *testing.B) {
	for name, req := range map[string]*pb.ModelInferRequest{"typed": typedIris(), "raw": rawIris()} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := decodeInfer(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
