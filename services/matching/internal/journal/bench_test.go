package journal

import (
	"testing"
)

var syncModes = []struct {
	name string
	mode SyncMode
}{{"fsync", SyncAlways}, {"nosync", SyncNever}}

// benchPayload is the size of a typical encoded submit command.
var benchPayload = make([]byte, 64)

// BenchmarkAppend measures group commit with many concurrent appenders,
// each waiting for its own record, as request handlers would.
func BenchmarkAppend(b *testing.B) {
	for _, m := range syncModes {
		b.Run(m.name, func(b *testing.B) {
			j := openJournal(b, b.TempDir(), Options{Sync: m.mode})
			b.SetParallelism(32) // 32 appenders per GOMAXPROCS
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := j.AppendSync(benchPayload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendPipelined measures one goroutine, like the engine, that
// keeps up to 1024 records in flight and waits once per 256.
func BenchmarkAppendPipelined(b *testing.B) {
	for _, m := range syncModes {
		b.Run(m.name, func(b *testing.B) {
			j := openJournal(b, b.TempDir(), Options{Sync: m.mode})
			b.ReportAllocs()
			var marks []uint64
			for b.Loop() {
				seq, err := j.Enqueue(benchPayload)
				if err != nil {
					b.Fatal(err)
				}
				if seq%256 == 0 {
					marks = append(marks, seq)
					if len(marks) > 4 {
						if err := j.WaitDurable(marks[0]); err != nil {
							b.Fatal(err)
						}
						marks = marks[1:]
					}
				}
			}
			if err := j.WaitDurable(j.LastSeq()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
