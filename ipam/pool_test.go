package ipam

// This file holds the table-driven edge cases: configurations New refuses, ranges ParseRange
// refuses, and what a pool does with its special addresses.

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestNewRefuses(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		want  error
		field string
	}{
		{"invalid subnet", Config{}, ErrInvalidSubnet, "subnet"},
		{"host bits", Config{Subnet: netip.MustParsePrefix("10.0.0.1/24")}, ErrInvalidSubnet, "subnet"},
		{"IPv4-mapped", Config{Subnet: mustPrefix("::ffff:10.0.0.0/120")}, ErrInvalidSubnet, "subnet"},
		{"/31", Config{Subnet: mustPrefix("10.0.0.0/31")}, ErrSubnetTooSmall, "subnet"},
		{"/32", Config{Subnet: mustPrefix("10.0.0.7/32")}, ErrSubnetTooSmall, "subnet"},
		{"/127", Config{Subnet: mustPrefix("fd00::/127")}, ErrSubnetTooSmall, "subnet"},
		{"/128", Config{Subnet: mustPrefix("fd00::1/128")}, ErrSubnetTooSmall, "subnet"},
		{"negative cooldown", Config{Subnet: mustPrefix("10.0.0.0/24"), Cooldown: -time.Second}, ErrInvalidCooldown, "cooldown"},
		{"gateway outside", Config{Subnet: mustPrefix("10.0.0.0/24"), Gateway: mustAddr("10.0.1.1")}, ErrOutsideSubnet, "gateway"},
		{"gateway other family", Config{Subnet: mustPrefix("10.0.0.0/24"), Gateway: mustAddr("::ffff:10.0.0.1")}, ErrOutsideSubnet, "gateway"},
		{"gateway network", Config{Subnet: mustPrefix("10.0.0.0/24"), Gateway: mustAddr("10.0.0.0")}, ErrUnassignable, "gateway"},
		{"gateway broadcast", Config{Subnet: mustPrefix("10.0.0.0/24"), Gateway: mustAddr("10.0.0.255")}, ErrUnassignable, "gateway"},
		{"gateway IPv6 anycast", Config{Subnet: mustPrefix("fd00::/64"), Gateway: mustAddr("fd00::")}, ErrUnassignable, "gateway"},
		{"range outside", Config{Subnet: mustPrefix("10.0.0.0/24"), Dynamic: mustRange("10.0.1.0/28")}, ErrOutsideSubnet, "range"},
		{"range straddles", Config{Subnet: mustPrefix("10.0.0.0/24"), Dynamic: mustRange("10.0.0.250-10.0.1.5")}, ErrOutsideSubnet, "range"},
		{"range wider", Config{Subnet: mustPrefix("10.0.0.0/24"), Dynamic: mustRange("10.0.0.0/16")}, ErrOutsideSubnet, "range"},
		{"range backwards", Config{Subnet: mustPrefix("10.0.0.0/24"), Dynamic: Range{mustAddr("10.0.0.9"), mustAddr("10.0.0.5")}}, ErrInvalidRange, "range"},
		{"range only network", Config{Subnet: mustPrefix("10.0.0.0/24"), Dynamic: mustRange("10.0.0.0")}, ErrInvalidRange, "range"},
		{"reserved outside", Config{Subnet: mustPrefix("10.0.0.0/24"), Reserved: []Range{mustRange("10.0.0.5"), mustRange("10.0.2.5")}}, ErrOutsideSubnet, "reserved[1]"},
		{"reserved other family", Config{Subnet: mustPrefix("10.0.0.0/24"), Reserved: []Range{mustRange("fd00::5")}}, ErrOutsideSubnet, "reserved[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Field != tc.field || p != nil {
				t.Fatalf("New: %#v (pool %v), want an *Error on field %q and no pool", err, p, tc.field)
			}
			t.Log(err)
		})
	}
}

func TestParseRange(t *testing.T) {
	cases := []struct {
		in   string
		want Range
		err  bool
	}{
		{"10.0.1.0/24", Range{mustAddr("10.0.1.0"), mustAddr("10.0.1.255")}, false},
		{"10.0.1.10-10.0.1.20", Range{mustAddr("10.0.1.10"), mustAddr("10.0.1.20")}, false},
		{"10.0.1.7", Range{mustAddr("10.0.1.7"), mustAddr("10.0.1.7")}, false},
		{"fd00::/126", Range{mustAddr("fd00::"), mustAddr("fd00::3")}, false},
		{"fd00::1-fd00::9", Range{mustAddr("fd00::1"), mustAddr("fd00::9")}, false},
		{"10.0.1.5/24", Range{}, true},
		{"10.0.1.20-10.0.1.10", Range{}, true},
		{"10.0.1.1-fd00::1", Range{}, true},
		{"10.0.1.300", Range{}, true},
		{"", Range{}, true},
		{"10.0.1.1-", Range{}, true},
	}
	for _, tc := range cases {
		got, err := ParseRange(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRange(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, ErrInvalidRange) {
			t.Errorf("ParseRange(%q): %v is not ErrInvalidRange", tc.in, err)
		}
	}
}

// TestSpecialAddresses checks pins and releases of every kind of address on one pool.
func TestSpecialAddresses(t *testing.T) {
	p, err := New(Config{Subnet: mustPrefix("10.0.0.0/28"), Dynamic: mustRange("10.0.0.4-10.0.0.11"),
		Reserved: []Range{mustRange("10.0.0.5-10.0.0.6"), mustRange("10.0.0.9")}, Cooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if gw := p.Config().Gateway; gw != mustAddr("10.0.0.1") {
		t.Fatalf("default gateway %s, want 10.0.0.1", gw)
	}
	cases := []struct {
		addr   string
		status Status
		pin    error // AllocateSpecific on the fresh pool
	}{
		{"10.0.0.0", StatusNetwork, ErrUnassignable},
		{"10.0.0.1", StatusGateway, ErrUnassignable},
		{"10.0.0.2", StatusFree, nil}, // outside the dynamic range: pinnable
		{"10.0.0.5", StatusReserved, nil},
		{"10.0.0.9", StatusReserved, nil},
		{"10.0.0.15", StatusBroadcast, ErrUnassignable},
		{"10.0.0.16", StatusOutside, ErrOutsideSubnet},
		{"fd00::1", StatusOutside, ErrOutsideSubnet},
		{"::ffff:10.0.0.3", StatusOutside, ErrOutsideSubnet},
		{"", StatusOutside, ErrOutsideSubnet},
	}
	for _, tc := range cases {
		var a netip.Addr
		if tc.addr != "" {
			a = mustAddr(tc.addr)
		}
		if got := p.Status(a); got != tc.status {
			t.Errorf("Status(%s) = %s, want %s", a, got, tc.status)
		}
		err := p.AllocateSpecific(a, t0, RefuseCooling)
		if !errors.Is(err, tc.pin) || (err != nil) != (tc.pin != nil) {
			t.Errorf("AllocateSpecific(%s) = %v, want %v", a, err, tc.pin)
		}
		if err != nil && !strings.Contains(err.Error(), "address "+a.String()+":") {
			t.Errorf("AllocateSpecific(%s) error %q does not name the address", a, err)
		}
	}
	// AllocateNext skips the pins, the reserved addresses and nothing else, within the range.
	var got []string
	for {
		a, err := p.AllocateNext(t0)
		if errors.Is(err, ErrPoolFull) {
			t.Log(err)
			break
		}
		got = append(got, a.String())
	}
	if want := "10.0.0.4 10.0.0.7 10.0.0.8 10.0.0.10 10.0.0.11"; strings.Join(got, " ") != want {
		t.Fatalf("AllocateNext gave %v, want %s", got, want)
	}
	if err := p.Release(mustAddr("10.0.0.4"), t0); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(mustAddr("10.0.0.4"), t0); !errors.Is(err, ErrNotAllocated) {
		t.Fatalf("second Release: %v, want ErrNotAllocated", err)
	}
	if err := p.AllocateSpecific(mustAddr("10.0.0.4"), t0.Add(59*time.Second), RefuseCooling); !errors.Is(err, ErrCoolingDown) {
		t.Fatalf("pin while cooling: %v, want ErrCoolingDown", err)
	} else {
		t.Log(err)
	}
	if _, err := p.AllocateNext(t0.Add(59 * time.Second)); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("AllocateNext while the only free address cools: %v, want ErrPoolFull", err)
	}
	if a, err := p.AllocateNext(t0.Add(time.Minute)); err != nil || a != mustAddr("10.0.0.4") {
		t.Fatalf("AllocateNext after the cooldown = %v, %v; want 10.0.0.4", a, err)
	}
	// A released reserved pin goes back to reserved, not to AllocateNext.
	if err := p.Release(mustAddr("10.0.0.5"), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p.Expire(t0.Add(time.Hour))
	if s := p.Status(mustAddr("10.0.0.5")); s != StatusReserved {
		t.Fatalf("released reserved pin is %s, want reserved", s)
	}
	if _, err := p.AllocateNext(t0.Add(time.Hour)); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("AllocateNext: %v, want ErrPoolFull", err)
	}
}

func TestRestoreRefuses(t *testing.T) {
	cfg := Config{Subnet: mustPrefix("10.0.0.0/24"), Dynamic: mustRange("10.0.0.0/25"), Cooldown: time.Minute}
	cases := []struct {
		name  string
		st    State
		want  error
		field string
	}{
		{"gateway", State{Allocated: []netip.Addr{mustAddr("10.0.0.1")}}, ErrUnassignable, "state.allocated[0]"},
		{"outside", State{Allocated: []netip.Addr{mustAddr("10.0.0.5"), mustAddr("10.0.3.5")}}, ErrOutsideSubnet, "state.allocated[1]"},
		{"twice", State{Allocated: []netip.Addr{mustAddr("10.0.0.5"), mustAddr("10.0.0.5")}}, ErrInUse, "state.allocated[1]"},
		{"twice, unordered", State{Allocated: []netip.Addr{mustAddr("10.0.0.9"), mustAddr("10.0.0.5"), mustAddr("10.0.0.7"), mustAddr("10.0.0.5"), mustAddr("10.0.0.9")}}, ErrInUse, "state.allocated[3]"},
		{"allocated and cooling", State{Allocated: []netip.Addr{mustAddr("10.0.0.5")}, Cooling: []Released{{mustAddr("10.0.0.5"), t0}}}, ErrInUse, "state.cooling[0]"},
		{"last outside range", State{Last: mustAddr("10.0.0.200")}, ErrOutsideRange, "state.last"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.AllocateNext(t0); err != nil {
				t.Fatal(err)
			}
			before := p.State()
			err = p.Restore(tc.st)
			var e *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Field != tc.field {
				t.Fatalf("Restore: %v, want %v on %s", err, tc.want, tc.field)
			}
			if !statesEqual(p.State(), before) {
				t.Fatalf("a refused Restore changed the pool: %+v, was %+v", p.State(), before)
			}
		})
	}
}
