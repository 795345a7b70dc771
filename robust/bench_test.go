package robust

import (
	"context"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

// BenchmarkPositions compares a call through robust with the same call made on the
// inner Broker directly: the difference is the decorator's overhead per call.
func BenchmarkPositions(b *testing.B) {
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		s := newStub(0)
		if _, err := s.Connect(ctx, testParams); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Positions(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("robust", func(b *testing.B) {
		f := &farm{}
		r := New(f.dial)
		defer r.Close()
		if _, err := r.Connect(ctx, testParams); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Positions(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("robust-parallel", func(b *testing.B) {
		f := &farm{}
		r := New(f.dial)
		defer r.Close()
		if _, err := r.Connect(ctx, testParams); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Positions(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

var _ broker.Broker = (*stub)(nil)
