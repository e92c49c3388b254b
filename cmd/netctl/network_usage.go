package main

// This file owns counting a network's addresses client-side, the way the
// allocator's pools count them: one ipam pool per subnet, built from the
// network's spec as the allocator builds it (ipam.ConfigOf, without the
// cooldown), each bound address taken on it, then the pool's Free. Addresses cooling down are counted apart (from
// the network's allocation record), not subtracted: the pool here has no
// clock. A bound address a pool refuses (outside every subnet, the
// gateway, bound twice) is reported as a conflict: the allocator's rebuild
// would report it too.

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
	"github.com/shoal/shoal/ipam"
)

// networkUsage is a network and how its addresses are used: a row of
// `network ls`, the body of `network inspect`, and their JSON form.
type networkUsage struct {
	Network json.RawMessage `json:"network"`
	// Used counts the bindings on the network, VIPs included.
	Used int `json:"used"`
	// Free is the sum of the subnets' Free, saturated at the largest uint64.
	Free      uint64        `json:"free"`
	Subnets   []subnetUsage `json:"subnets"`
	Conflicts []string      `json:"conflicts,omitempty"`

	network *api.Network
}

// subnetUsage is one subnet of a network.
type subnetUsage struct {
	Subnet string `json:"subnet"`
	// Gateway is the subnet's gateway, the default one if the spec has none.
	Gateway      string            `json:"gateway"`
	IPRange      string            `json:"ip_range,omitempty"`
	AuxAddresses map[string]string `json:"aux_addresses,omitempty"`
	// Used counts the bindings with an address in the subnet.
	Used uint64 `json:"used"`
	// Free counts the addresses of the dynamic range (--ip-range, else the
	// subnet) that are not the gateway, reserved (--aux-address) or bound.
	Free uint64 `json:"free"`
	// Cooling counts the released addresses the allocation record lists
	// as cooling down; Cursor is where serial allocation continues after.
	Cooling int    `json:"cooling"`
	Cursor  string `json:"cursor,omitempty"`
	// Error says why no pool could be built for the subnet.
	Error string `json:"error,omitempty"`
}

// poolEpoch is the time pool calls are made at: the pools here have no
// cooldown, so any fixed time does.
var poolEpoch = time.Unix(0, 0)

// usageOf counts the addresses of n; bindings may include other networks'.
func usageOf(n *api.Network, bindings []*api.IPBinding) networkUsage {
	u := networkUsage{network: n}
	pools := make([]*ipam.Pool, len(n.GetSpec().GetIpam()))
	prefixes := make([]netip.Prefix, len(pools))
	for i, c := range n.GetSpec().GetIpam() {
		su := subnetUsage{Subnet: c.GetSubnet(), Gateway: c.GetGateway(), IPRange: c.GetIpRange(), AuxAddresses: c.GetAuxAddresses()}
		cfg, err := ipam.ConfigOf(c)
		if err == nil {
			pools[i], err = ipam.New(cfg)
		}
		if err != nil {
			su.Error = err.Error()
		} else {
			prefixes[i] = cfg.Subnet
			su.Gateway = pools[i].Config().Gateway.String()
		}
		if rec := allocationOf(n, i, c.GetSubnet()); rec != nil {
			su.Cooling, su.Cursor = len(rec.GetCooling()), rec.GetLast()
		}
		u.Subnets = append(u.Subnets, su)
	}
	for _, b := range bindings {
		if b.GetNetworkId() != n.GetId() {
			continue
		}
		u.Used++
		addr, err := bindingAddr(b.GetAddress())
		if err != nil {
			u.Conflicts = append(u.Conflicts, fmt.Sprintf("%s: address %q: %v", describeBinding(b), b.GetAddress(), err))
			continue
		}
		i := slices.IndexFunc(prefixes, func(p netip.Prefix) bool { return p.IsValid() && p.Contains(addr) })
		if i < 0 {
			u.Conflicts = append(u.Conflicts, fmt.Sprintf("%s: %s is in no subnet of the network", describeBinding(b), addr))
			continue
		}
		u.Subnets[i].Used++
		if err := pools[i].AllocateSpecific(addr, poolEpoch, ipam.TakeCooling); err != nil {
			u.Conflicts = append(u.Conflicts, fmt.Sprintf("%s: %v", describeBinding(b), err))
		}
	}
	for i, p := range pools {
		if p != nil {
			u.Subnets[i].Free = p.Free()
			u.Free = addSaturating(u.Free, u.Subnets[i].Free)
		}
	}
	return u
}

// allocationOf is the allocation record of n's i-th subnet: the one naming
// the subnet, else the i-th if it names none (the records follow the
// spec's order).
func allocationOf(n *api.Network, i int, subnet string) *api.SubnetAllocation {
	want, err := netip.ParsePrefix(subnet)
	for _, a := range n.GetAllocation() {
		if got, perr := netip.ParsePrefix(a.GetSubnet()); err == nil && perr == nil && got == want {
			return a
		}
	}
	if i < len(n.GetAllocation()) && n.GetAllocation()[i].GetSubnet() == "" {
		return n.GetAllocation()[i]
	}
	return nil
}

// bindingAddr is a binding's address, written with its prefix length
// ("10.20.0.5/24") or without.
func bindingAddr(s string) (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), nil
	}
	return netip.ParseAddr(s)
}

// describeBinding names a binding in a conflict: "web slot 3", "web vip".
func describeBinding(b *api.IPBinding) string {
	switch b.GetKind() {
	case api.IPBinding_KIND_VIP:
		return bindingService(b) + " vip"
	case api.IPBinding_KIND_NODE:
		return bindingService(b) + " node " + cli.ShortID(b.GetNodeId())
	}
	return bindingService(b) + " slot " + strconv.FormatUint(b.GetSlot(), 10)
}

func addSaturating(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}
