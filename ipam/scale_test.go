package ipam

// This file checks what large pools cost: memory that follows the allocations and not the pool's
// size, no allocation per AllocateNext on a run, a treap that stays shallow, and a State that
// rebuilds a /8 with 100,000 scattered addresses into a pool that carries on identically.

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// memStats is the heap in use after a collection, and the bytes allocated since the start.
func memStats() (inUse, allocated uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.TotalAlloc
}

func TestSlash8Memory(t *testing.T) {
	inUse0, total0 := memStats()
	p, err := New(Config{Subnet: mustPrefix("10.0.0.0/8"), Cooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for range 100_000 {
		if _, err := p.AllocateNext(t0); err != nil {
			t.Fatal(err)
		}
	}
	// TotalAlloc counts every byte allocated, freed or not: the 100,000 allocations must not
	// have cost anything in proportion to their number, let alone to the subnet's size.
	_, total := memStats()
	t.Logf("/8 pool and 100,000 addresses in a row: %d bytes allocated in all", total-total0)
	if total-total0 > 16<<10 {
		t.Errorf("a /8 pool and 100,000 consecutive addresses allocated %d bytes, want a few runs' worth", total-total0)
	}
	if p.Used() != 100_000 || p.Free() != 1<<24-3-100_000 {
		t.Errorf("used %d, free %d", p.Used(), p.Free())
	}
	if n := testing.AllocsPerRun(1000, func() { p.AllocateNext(t0) }); n != 0 {
		t.Errorf("AllocateNext at the end of a run allocates %v times, want 0", n)
	}

	// Release every other address: 50,000 runs and 50,000 cooling addresses, still nothing in
	// proportion to the 2^24 addresses of the subnet.
	for a := mustAddr("10.0.0.2"); a.Less(mustAddr("10.1.134.162")); a = a.Next().Next() {
		if err := p.Release(a, t0); err != nil {
			t.Fatal(err)
		}
	}
	inUse, _ := memStats()
	fragmented := int64(inUse) - int64(inUse0)
	t.Logf("/8, 50,000 allocated and 50,000 cooling, alternating: %d bytes (%d per address), %d runs", fragmented, fragmented/100_000, p.used.spans)
	if fragmented > 100_000*200 {
		t.Errorf("fragmented /8 costs %d bytes, want under 200 per allocated or cooling address", fragmented)
	}
	runtime.KeepAlive(p)
}

func TestSlash16FillAndCooldown(t *testing.T) {
	p, err := New(Config{Subnet: mustPrefix("172.20.0.0/16"), Cooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	prev := netip.Addr{}
	for {
		a, err := p.AllocateNext(t0)
		if errors.Is(err, ErrPoolFull) {
			break
		}
		if prev.IsValid() && a != prev.Next() {
			t.Fatalf("AllocateNext gave %s after %s", a, prev)
		}
		prev = a
		n++
	}
	if n != 1<<16-3 || p.Free() != 0 {
		t.Fatalf("filled %d addresses (free %d), want %d", n, p.Free(), 1<<16-3)
	}
	if p.used.spans != 1 || p.blocked.spans != 1 {
		t.Fatalf("a full /16 is %d used runs and %d blocked runs, want 1 and 1", p.used.spans, p.blocked.spans)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var released []netip.Addr
	for range 100 {
		a := mustAddr("172.20.0.2")
		for range rng.IntN(1<<16 - 3) {
			a = a.Next()
		}
		if p.Release(a, t0) == nil {
			released = append(released, a)
		}
	}
	if _, err := p.AllocateNext(t0.Add(time.Minute - 1)); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("AllocateNext before the cooldown: %v, want ErrPoolFull", err)
	}
	// The cursor is at the end of the range, so the released addresses come back in address order.
	for range released {
		if _, err := p.AllocateNext(t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if p.Free() != 0 || p.Cooling() != 0 || p.used.spans != 1 {
		t.Fatalf("after taking the released ones back: free %d, cooling %d, %d runs", p.Free(), p.Cooling(), p.used.spans)
	}
}

func TestLargeIPv6(t *testing.T) {
	p, err := New(Config{Subnet: mustPrefix("fd00:1::/56")})
	if err != nil {
		t.Fatal(err)
	}
	if p.Free() != math.MaxUint64 {
		t.Fatalf("Free of a /56 = %d, want saturated", p.Free())
	}
	a, err := p.AllocateNext(t0)
	if err != nil || a != mustAddr("fd00:1::2") {
		t.Fatalf("AllocateNext = %v, %v; want fd00:1::2", a, err)
	}
	last := mustAddr("fd00:1:0:ff:ffff:ffff:ffff:ffff")
	if err := p.AllocateSpecific(last, t0, RefuseCooling); err != nil {
		t.Fatalf("pin of the last address of an IPv6 subnet (no broadcast): %v", err)
	}
	q, err := New(Config{Subnet: mustPrefix("fd00:1::/64"), Dynamic: mustRange("fd00:1::ffff:ffff:ffff:fffe-fd00:1::ffff:ffff:ffff:ffff")})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fd00:1::ffff:ffff:ffff:fffe", "fd00:1::ffff:ffff:ffff:ffff"} {
		if a, err := q.AllocateNext(t0); err != nil || a != mustAddr(want) {
			t.Fatalf("AllocateNext = %v, %v; want %s", a, err, want)
		}
	}
	if _, err := q.AllocateNext(t0); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("AllocateNext: %v, want ErrPoolFull", err)
	}
}

// TestTreapDepth inserts 100,000 isolated addresses in ascending order, the worst order for an
// unbalanced tree.
func TestTreapDepth(t *testing.T) {
	var s spanSet
	for i := range uint64(100_000) {
		s.add(u128{0, 2 * i})
	}
	var depth func(n *spanNode) int
	depth = func(n *spanNode) int {
		if n == nil {
			return 0
		}
		return 1 + max(depth(n.left), depth(n.right))
	}
	if d := depth(s.root); d > 60 {
		t.Fatalf("treap of %d spans is %d deep", s.spans, d)
	} else {
		t.Logf("treap of %d spans is %d deep", s.spans, d)
	}
}

// TestRestoreCarriesOn fragments a /8 with 100,000 addresses, rebuilds it from its State, and
// checks that both pools then answer 10,000 more random operations identically.
func TestRestoreCarriesOn(t *testing.T) {
	cfg := Config{Subnet: mustPrefix("10.0.0.0/8"), Reserved: []Range{mustRange("10.0.1.0/24")}, Cooldown: time.Minute}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	now := t0
	var held []netip.Addr
	for range 100_000 {
		a, err := p.AllocateNext(now)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, a)
		if rng.IntN(3) == 0 {
			i := rng.IntN(len(held))
			if err := p.Release(held[i], now); err != nil {
				t.Fatal(err)
			}
			held[i] = held[len(held)-1]
			held = held[:len(held)-1]
		}
		now = now.Add(time.Millisecond)
	}
	start := time.Now()
	q := rebuilt(t, p)
	t.Logf("%d allocated, %d cooling, %d runs; rebuilt in %v", p.Used(), p.Cooling(), p.used.spans, time.Since(start))
	for range 10_000 {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Millisecond)
		switch rng.IntN(3) {
		case 0, 1:
			a, errA := p.AllocateNext(now)
			b, errB := q.AllocateNext(now)
			if a != b || (errA == nil) != (errB == nil) {
				t.Fatalf("AllocateNext: original %v, %v; rebuilt %v, %v", a, errA, b, errB)
			}
		default:
			a := held[rng.IntN(len(held))]
			errA, errB := p.Release(a, now), q.Release(a, now)
			if (errA == nil) != (errB == nil) {
				t.Fatalf("Release(%s): original %v, rebuilt %v", a, errA, errB)
			}
		}
	}
	if !statesEqual(p.State(), q.State()) {
		t.Fatal("the original and the rebuilt pool diverged")
	}
}
