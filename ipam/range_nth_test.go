package ipam

import (
	"net/netip"
	"testing"
)

func TestRangeNthAndSize(t *testing.T) {
	for _, tc := range []struct {
		rng  string
		n    uint64
		want string // "" when past the end
		size uint64
	}{
		{"10.0.0.10-10.0.0.12", 0, "10.0.0.10", 3},
		{"10.0.0.10-10.0.0.12", 2, "10.0.0.12", 3},
		{"10.0.0.10-10.0.0.12", 3, "", 3},
		{"10.0.0.0/24", 255, "10.0.0.255", 256},
		{"10.0.0.0/24", 1 << 40, "", 256},
		{"10.0.0.255-10.0.1.1", 1, "10.0.1.0", 3},
		{"fd00::/64", 1 << 33, "fd00::2:0:0", 1<<64 - 1},
		{"255.255.255.254-255.255.255.255", 2, "", 2},
	} {
		r, err := ParseRange(tc.rng)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := r.Nth(tc.n)
		if tc.want == "" {
			if ok {
				t.Errorf("%s.Nth(%d) = %s, want past the end", tc.rng, tc.n, got)
			}
		} else if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s.Nth(%d) = %s, %v; want %s", tc.rng, tc.n, got, ok, tc.want)
		}
		if s := r.Size(); s != tc.size {
			t.Errorf("%s.Size() = %d, want %d", tc.rng, s, tc.size)
		}
	}
}
