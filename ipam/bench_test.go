package ipam

// This file holds the benchmarks: AllocateNext on a /8 and a /16 (100,000 addresses per
// iteration, reported as addrs/s), on a fragmented, nearly full /16, and Restore of 100,000
// addresses.

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func BenchmarkAllocateNext(b *testing.B) {
	const n = 100_000
	b.Run("slash8", func(b *testing.B) {
		for b.Loop() {
			p, _ := New(Config{Subnet: mustPrefix("10.0.0.0/8"), Cooldown: time.Minute})
			for range n {
				if _, err := p.AllocateNext(t0); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "addrs/s")
	})
	// A /16 holds fewer than 100,000: keep 50,000 allocated, release the oldest past that, with
	// the clock moving 1 ms per allocation and a 10 s cooldown, so AllocateNext wraps around and
	// skips cooling runs.
	b.Run("slash16-churn", func(b *testing.B) {
		held := make([]netip.Addr, 0, n)
		for b.Loop() {
			p, _ := New(Config{Subnet: mustPrefix("172.20.0.0/16"), Cooldown: 10 * time.Second})
			held = held[:0]
			now := t0
			for i := range n {
				now = now.Add(time.Millisecond)
				a, err := p.AllocateNext(now)
				if err != nil {
					b.Fatal(err)
				}
				held = append(held, a)
				if i >= 50_000 {
					if err := p.Release(held[i-50_000], now); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "addrs/s")
	})
}

// BenchmarkAllocateNextFragmented keeps a /16 98% full with 1,300 free addresses scattered at
// random; each iteration allocates the next one and releases a random allocated one (zero
// cooldown), so the free addresses stay scattered.
func BenchmarkAllocateNextFragmented(b *testing.B) {
	p, _ := New(Config{Subnet: mustPrefix("172.20.0.0/16")})
	var held []netip.Addr
	for {
		a, err := p.AllocateNext(t0)
		if err != nil {
			break
		}
		held = append(held, a)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	release := func() {
		i := rng.IntN(len(held))
		if err := p.Release(held[i], t0); err != nil {
			b.Fatal(err)
		}
		held[i] = held[len(held)-1]
		held = held[:len(held)-1]
	}
	for range 1300 {
		release()
	}
	for b.Loop() {
		a, err := p.AllocateNext(t0)
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, a)
		release()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
	b.ReportMetric(float64(p.used.spans), "runs")
}

// BenchmarkRestore rebuilds a /8 holding 100,000 addresses, one in three of them released and
// cooling, from its State.
func BenchmarkRestore(b *testing.B) {
	cfg := Config{Subnet: mustPrefix("10.0.0.0/8"), Cooldown: time.Hour}
	p, _ := New(cfg)
	for i := range 150_000 {
		a, _ := p.AllocateNext(t0)
		if i%3 == 0 {
			p.Release(a, t0)
		}
	}
	st := p.State()
	for b.Loop() {
		q, _ := New(cfg)
		if err := q.Restore(st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(st.Allocated)+len(st.Cooling)), "addrs")
}
