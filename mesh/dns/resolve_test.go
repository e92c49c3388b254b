package dns

import (
	"net/netip"
	"testing"
)

func TestParseReverse4(t *testing.T) {
	cases := []struct {
		name string
		want netip.Addr // invalid: not an IPv4 reverse name
	}{
		{"11.53.18.198.in-addr.arpa.", netip.MustParseAddr("198.18.53.11")},
		{"0.0.0.0.in-addr.arpa.", netip.MustParseAddr("0.0.0.0")},
		{"255.255.255.255.in-addr.arpa.", netip.MustParseAddr("255.255.255.255")},
		{"53.18.198.in-addr.arpa.", netip.Addr{}},         // a /24 zone, not an address
		{"1.11.53.18.198.in-addr.arpa.", netip.Addr{}},    // five labels
		{"011.53.18.198.in-addr.arpa.", netip.Addr{}},     // not canonical
		{"256.53.18.198.in-addr.arpa.", netip.Addr{}},     // not a byte
		{"x.53.18.198.in-addr.arpa.", netip.Addr{}},       // not a number
		{"11..18.198.in-addr.arpa.", netip.Addr{}},        // an empty label
		{"11.53.18.198.in-addr.arpa", netip.Addr{}},       // not fully qualified
		{"11.53.18.198.ip6.arpa.", netip.Addr{}},          // another tree
		{"in-addr.arpa.", netip.Addr{}},                   // the tree itself
		{"-1.53.18.198.in-addr.arpa.", netip.Addr{}},      // a sign
		{"11.53.18.198.in-addr.arpa.arpa.", netip.Addr{}}, // a suffix after
	}
	for _, tc := range cases {
		got, ok := parseReverse4(tc.name)
		if ok != tc.want.IsValid() || got != tc.want {
			t.Errorf("parseReverse4(%q) = %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}
}
