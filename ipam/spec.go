package ipam

// This file owns reading one subnet of a network spec (api.IPAMConfig) into a Config: the one
// reading the control API validates with, the allocator builds its pools from and netctl counts
// with, so all three agree on what a subnet's configuration means.

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/shoal/shoal/api"
)

// ConfigOf is the Config of one subnet of a network spec, without a Cooldown (the caller's to
// set). Reserved holds the aux addresses in the order of their names, so the first bad one is
// always the same one and Reserved[i] is the aux address of the i-th name in sorted order. It
// checks only that each part parses; New checks that they fit together.
//
// An error is an *Error whose Field names the part of c at fault as the spec spells it:
// "subnet", "gateway", "ip_range" or "aux_addresses[NAME]", with the value refused.
func ConfigOf(c *api.IPAMConfig) (Config, error) {
	var cfg Config
	var err error
	if cfg.Subnet, err = netip.ParsePrefix(c.GetSubnet()); err != nil {
		return cfg, &Error{Field: "subnet", Value: c.GetSubnet(), Err: fmt.Errorf("%w: %v", ErrInvalidSubnet, err)}
	}
	if c.GetGateway() != "" {
		if cfg.Gateway, err = netip.ParseAddr(c.GetGateway()); err != nil {
			return cfg, &Error{Field: "gateway", Value: c.GetGateway(), Err: fmt.Errorf("%w: %v", ErrInvalidAddress, err)}
		}
	}
	if c.GetIpRange() != "" {
		if cfg.Dynamic, err = parseRange("ip_range", c.GetIpRange()); err != nil {
			return cfg, err
		}
	}
	aux := c.GetAuxAddresses()
	for _, name := range slices.Sorted(maps.Keys(aux)) {
		r, err := parseRange("aux_addresses["+name+"]", aux[name])
		if err != nil {
			return cfg, err
		}
		cfg.Reserved = append(cfg.Reserved, r)
	}
	return cfg, nil
}
