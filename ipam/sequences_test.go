package ipam

// This file checks the pool against the model (model_test.go): every operation sequence up to a
// depth on tiny pools, every release order of a full /29, and long randomized sequences.

import (
	"flag"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("ipam.seed", 20260301, "seed of the randomized ipam tests")

// tinyConfigs are the pools the exhaustive tests enumerate.
var tinyConfigs = []struct {
	name  string
	cfg   Config
	depth int // sequences of every op up to this length
}{
	{"/30", Config{Subnet: mustPrefix("10.0.0.0/30"), Cooldown: 10 * time.Second}, 6},
	{"/29", Config{Subnet: mustPrefix("10.0.0.0/29"), Cooldown: 10 * time.Second}, 4},
	{"/29 range and reserved", Config{Subnet: mustPrefix("10.0.0.0/29"), Gateway: mustAddr("10.0.0.6"),
		Dynamic: mustRange("10.0.0.1-10.0.0.4"), Reserved: []Range{mustRange("10.0.0.3")}, Cooldown: 10 * time.Second}, 4},
	{"/126 zero cooldown", Config{Subnet: mustPrefix("fd00::/126")}, 5},
}

// alphabet is every operation the exhaustive tests try on m's pool: every pin and release of an
// address that is not the network or broadcast address (the table tests cover those), the gateway
// included, and a clock advance of half the cooldown.
func alphabet(m *model) []op {
	ops := []op{{kind: opNext}, {kind: opAdvance, by: m.cooldown / 2}}
	for _, a := range m.addrs {
		if a == m.network || a == m.broadcast {
			continue
		}
		ops = append(ops, op{kind: opPin, addr: a}, op{kind: opRelease, addr: a})
		if a != m.gateway && m.cooldown > 0 {
			ops = append(ops, op{kind: opPinTake, addr: a})
		}
	}
	return ops
}

func TestExhaustiveSequences(t *testing.T) {
	for _, tc := range tinyConfigs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ops := alphabet(newModel(tc.cfg))
			depth := tc.depth
			if testing.Short() {
				depth--
			}
			seq := make([]int, depth)
			runs := 0
			for {
				h := newHarness(t, tc.cfg)
				for _, i := range seq {
					h.apply(ops[i])
				}
				h.checkAll()
				runs++
				// The next sequence, as an odometer over ops.
				k := depth - 1
				for ; k >= 0 && seq[k] == len(ops)-1; k-- {
					seq[k] = 0
				}
				if k < 0 {
					break
				}
				seq[k]++
			}
			t.Logf("%d sequences of %d operations over %d kinds", runs, depth, len(ops))
		})
	}
}

// TestEveryReleaseOrder fills a /29, releases its five addresses in every order with the clock
// moving between releases, and checks that AllocateNext hands them back in the model's order as
// their cooldowns end.
func TestEveryReleaseOrder(t *testing.T) {
	cfg := Config{Subnet: mustPrefix("10.0.0.0/29"), Cooldown: 10 * time.Second}
	addrs := []netip.Addr{mustAddr("10.0.0.2"), mustAddr("10.0.0.3"), mustAddr("10.0.0.4"), mustAddr("10.0.0.5"), mustAddr("10.0.0.6")}
	perms := 0
	for order := range permutations(len(addrs)) {
		h := newHarness(t, cfg)
		for range addrs {
			h.apply(op{kind: opNext})
		}
		h.apply(op{kind: opNext}) // full
		for _, i := range order {
			h.apply(op{kind: opRelease, addr: addrs[i]})
			h.apply(op{kind: opNext}) // cooling: still full
			h.apply(op{kind: opAdvance, by: 3 * time.Second})
		}
		for range 8 {
			h.apply(op{kind: opNext})
			h.apply(op{kind: opAdvance, by: time.Second})
		}
		h.checkAll()
		perms++
	}
	if perms != 120 {
		t.Fatalf("%d permutations, want 120", perms)
	}
}

// permutations yields every ordering of 0..n-1 (Heap's algorithm); the slice is reused.
func permutations(n int) func(yield func([]int) bool) {
	return func(yield func([]int) bool) {
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		var gen func(k int) bool
		gen = func(k int) bool {
			if k == 1 {
				return yield(p)
			}
			for i := range k - 1 {
				if !gen(k - 1) {
					return false
				}
				if k%2 == 0 {
					p[i], p[k-1] = p[k-1], p[i]
				} else {
					p[0], p[k-1] = p[k-1], p[0]
				}
			}
			return gen(k - 1)
		}
		gen(n)
	}
}

// TestRandomSequences runs long random sequences of next, pin, pin-take, release and clock
// advances against the model; every 1,000 operations the pool is swapped for one rebuilt from its
// State, which must carry on identically.
func TestRandomSequences(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"/24 range reserved gateway", Config{Subnet: mustPrefix("10.1.2.0/24"), Gateway: mustAddr("10.1.2.254"),
			Dynamic: mustRange("10.1.2.10-10.1.2.200"),
			Reserved: []Range{mustRange("10.1.2.20-10.1.2.29"), mustRange("10.1.2.100"), mustRange("10.1.2.150-10.1.2.160"),
				mustRange("10.1.2.25-10.1.2.31")},
			Cooldown: 30 * time.Second}},
		{"/26 zero cooldown", Config{Subnet: mustPrefix("192.168.7.64/26")}},
		{"/121 IPv6 range", Config{Subnet: mustPrefix("fd00:1:2:3::/121"), Dynamic: mustRange("fd00:1:2:3::/122"),
			Reserved: []Range{mustRange("fd00:1:2:3::8-fd00:1:2:3::f")}, Cooldown: time.Minute}},
	}
	steps := 20000
	if testing.Short() {
		steps = 2000
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seed := *seedFlag + uint64(i)
			t.Logf("seed %d (rerun with -ipam.seed=%d)", seed, *seedFlag)
			rng := rand.New(rand.NewPCG(seed, seed))
			h := newHarness(t, tc.cfg)
			pick := func() netip.Addr {
				if rng.IntN(20) == 0 { // now and then one outside the subnet
					return h.m.addrs[len(h.m.addrs)-1].Next()
				}
				return h.m.addrs[rng.IntN(len(h.m.addrs))]
			}
			for step := range steps {
				switch r := rng.IntN(100); {
				case r < 40:
					h.apply(op{kind: opNext})
				case r < 52:
					h.apply(op{kind: opPin, addr: pick()})
				case r < 56:
					h.apply(op{kind: opPinTake, addr: pick()})
				case r < 88:
					var held []netip.Addr
					for a := range h.m.allocated {
						held = append(held, a)
					}
					slices.SortFunc(held, netip.Addr.Compare)
					a := pick()
					if len(held) > 0 && rng.IntN(10) > 0 {
						a = held[rng.IntN(len(held))]
					}
					h.apply(op{kind: opRelease, addr: a})
				default:
					h.apply(op{kind: opAdvance, by: time.Duration(rng.Int64N(int64(tc.cfg.Cooldown/2) + 1))})
				}
				if step%1000 == 999 {
					h.checkAll()
					h.pool = rebuilt(t, h.pool)
				}
			}
			h.checkAll()
		})
	}
}

// rebuilt is a pool built by New and Restore from p's Config and State; it checks that the State
// round-trips.
func rebuilt(t testing.TB, p *Pool) *Pool {
	t.Helper()
	q, err := New(p.Config())
	if err != nil {
		t.Fatalf("New(%+v): %v", p.Config(), err)
	}
	st := p.State()
	if err := q.Restore(st); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := q.State(); !statesEqual(got, st) {
		t.Fatalf("State after Restore = %+v, want %+v", got, st)
	}
	if q.Used() != p.Used() || q.Cooling() != p.Cooling() || q.Free() != p.Free() {
		t.Fatalf("rebuilt counts %d/%d/%d, original %d/%d/%d", q.Used(), q.Cooling(), q.Free(), p.Used(), p.Cooling(), p.Free())
	}
	return q
}

func statesEqual(a, b State) bool {
	return slices.Equal(a.Allocated, b.Allocated) && a.Last == b.Last &&
		slices.EqualFunc(a.Cooling, b.Cooling, func(x, y Released) bool { return x.Addr == y.Addr && x.At.Equal(y.At) })
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

func mustRange(s string) Range {
	r, err := ParseRange(s)
	if err != nil {
		panic(err)
	}
	return r
}
