package ipam

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/shoal/shoal/api"
)

func TestConfigOf(t *testing.T) {
	c := &api.IPAMConfig{
		Subnet:       "10.20.0.0/24",
		Gateway:      "10.20.0.254",
		IpRange:      "10.20.0.100-10.20.0.199",
		AuxAddresses: map[string]string{"router": "10.20.0.5", "db": "10.20.0.8/30"},
	}
	cfg, err := ConfigOf(c)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Subnet:  netip.MustParsePrefix("10.20.0.0/24"),
		Gateway: netip.MustParseAddr("10.20.0.254"),
		Dynamic: Range{netip.MustParseAddr("10.20.0.100"), netip.MustParseAddr("10.20.0.199")},
		// By name: db, then router.
		Reserved: []Range{
			{netip.MustParseAddr("10.20.0.8"), netip.MustParseAddr("10.20.0.11")},
			{netip.MustParseAddr("10.20.0.5"), netip.MustParseAddr("10.20.0.5")},
		},
	}
	if cfg.Subnet != want.Subnet || cfg.Gateway != want.Gateway || cfg.Dynamic != want.Dynamic ||
		!slices.Equal(cfg.Reserved, want.Reserved) || cfg.Cooldown != 0 {
		t.Errorf("ConfigOf = %+v, want %+v", cfg, want)
	}

	bare, err := ConfigOf(&api.IPAMConfig{Subnet: "fd00:20::/64"})
	if err != nil || bare.Gateway.IsValid() || bare.Dynamic.IsValid() || bare.Reserved != nil {
		t.Errorf("ConfigOf(subnet only) = %+v, %v; want only the subnet", bare, err)
	}
}

func TestConfigOfRefuses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		c         *api.IPAMConfig
		wantField string
		wantValue string
		wantErr   error
	}{
		{"no config", nil, "subnet", "", ErrInvalidSubnet},
		{"a subnet that is no prefix", &api.IPAMConfig{Subnet: "10.20.0.0"}, "subnet", "10.20.0.0", ErrInvalidSubnet},
		{"a gateway that is no address", &api.IPAMConfig{Subnet: "10.20.0.0/24", Gateway: "10.20.0"}, "gateway", "10.20.0", ErrInvalidAddress},
		{"an ip range that does not parse", &api.IPAMConfig{Subnet: "10.20.0.0/24", IpRange: "10.20.0.9-10.20.0.1"}, "ip_range", "10.20.0.9-10.20.0.1", ErrInvalidRange},
		{"the first bad aux address by name", &api.IPAMConfig{Subnet: "10.20.0.0/24", AuxAddresses: map[string]string{"b": "x", "a": "10.20.0.5", "c": "y"}},
			"aux_addresses[b]", "x", ErrInvalidRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfigOf(tc.c)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("ConfigOf = %v, want an *Error", err)
			}
			if ie.Field != tc.wantField || ie.Value != tc.wantValue || !errors.Is(err, tc.wantErr) {
				t.Errorf("ConfigOf = field %q value %q (%v), want field %q value %q wrapping %v",
					ie.Field, ie.Value, err, tc.wantField, tc.wantValue, tc.wantErr)
			}
		})
	}
}
