// This file owns the network configuration shoal-ipam reads: the "ipam"
// section's subnets and routes, decoded and validated once into subnet values
// the rest of the plugin works with.

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// netConf is the part of the network configuration shoal-ipam reads. IPAM
// plugins receive the whole configuration of the plugin that delegates to them.
type netConf struct {
	CNIVersion string    `json:"cniVersion"`
	Name       string    `json:"name"`
	IPAM       *ipamConf `json:"ipam"`

	// RuntimeConfig.IPs is filled by the runtime from the "ips" capability:
	// the addresses the manager assigned to this attachment.
	RuntimeConfig struct {
		IPs []string `json:"ips,omitempty"`
	} `json:"runtimeConfig"`
	// Args.CNI.IPs is the older, args-based way to pass the same addresses.
	Args struct {
		CNI struct {
			IPs []string `json:"ips,omitempty"`
		} `json:"cni"`
	} `json:"args"`

	RawPrevResult map[string]any `json:"prevResult,omitempty"`
}

// ipamConf is the "ipam" section as the agent renders it.
type ipamConf struct {
	Type    string         `json:"type"`
	Subnets []subnetConf   `json:"subnets"`
	Routes  []*types.Route `json:"routes"`
}

// subnetConf is one entry of ipam.subnets.
type subnetConf struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
}

// subnet is a validated subnet: a network prefix (host bits zero) and a
// gateway address inside it.
type subnet struct {
	Prefix  netip.Prefix
	Gateway netip.Addr
}

func (s subnet) String() string { return s.Prefix.String() }

// config is a decoded and validated configuration.
type config struct {
	raw     *netConf
	subnets []subnet
	routes  []*types.Route
}

// loadConfig decodes stdin and validates the ipam section.
func loadConfig(stdin []byte) (*config, error) {
	var n netConf
	if err := json.Unmarshal(stdin, &n); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "shoal-ipam: decode network configuration", err.Error())
	}
	if n.IPAM == nil {
		return nil, invalidConfig("shoal-ipam: the network configuration has no \"ipam\" section")
	}
	subnets, err := parseSubnets(n.IPAM.Subnets)
	if err != nil {
		return nil, invalidConfig("shoal-ipam: " + err.Error())
	}
	for i, r := range n.IPAM.Routes {
		if r == nil || r.Dst.IP == nil {
			return nil, invalidConfig(fmt.Sprintf("shoal-ipam: ipam.routes[%d]: dst is missing", i))
		}
	}
	return &config{raw: &n, subnets: subnets, routes: n.IPAM.Routes}, nil
}

// parseSubnets validates ipam.subnets: each must be a network prefix with room
// for a gateway and at least one host, its gateway (default: the first address
// after the network address) must be a usable address inside it, and no two
// subnets may overlap.
func parseSubnets(confs []subnetConf) ([]subnet, error) {
	if len(confs) == 0 {
		return nil, fmt.Errorf("ipam.subnets is empty: at least one subnet is needed")
	}
	subnets := make([]subnet, 0, len(confs))
	for i, c := range confs {
		s, err := parseSubnet(c)
		if err != nil {
			return nil, fmt.Errorf("ipam.subnets[%d]: %w", i, err)
		}
		for _, other := range subnets {
			if other.Prefix.Overlaps(s.Prefix) {
				return nil, fmt.Errorf("ipam.subnets[%d]: subnet %s overlaps subnet %s", i, s.Prefix, other.Prefix)
			}
		}
		subnets = append(subnets, s)
	}
	return subnets, nil
}

func parseSubnet(c subnetConf) (subnet, error) {
	prefix, err := netip.ParsePrefix(c.Subnet)
	if err != nil {
		return subnet{}, fmt.Errorf("subnet %q is not in CIDR notation: %w", c.Subnet, err)
	}
	if prefix != prefix.Masked() {
		return subnet{}, fmt.Errorf("subnet %s has host bits set (the network is %s)", prefix, prefix.Masked())
	}
	if prefix.Addr().BitLen()-prefix.Bits() < 2 {
		return subnet{}, fmt.Errorf("subnet %s is too small for a gateway and a host", prefix)
	}
	s := subnet{Prefix: prefix, Gateway: prefix.Addr().Next()}
	if c.Gateway != "" {
		gw, err := netip.ParseAddr(c.Gateway)
		if err != nil {
			return subnet{}, fmt.Errorf("gateway %q of subnet %s is not an IP address: %w", c.Gateway, prefix, err)
		}
		if reason := unusableReason(gw, prefix); reason != "" {
			return subnet{}, fmt.Errorf("gateway %s of subnet %s %s", gw, prefix, reason)
		}
		s.Gateway = gw
	}
	return s, nil
}

// unusableReason says why addr cannot be given to an interface in prefix, or
// returns "" when it can.
func unusableReason(addr netip.Addr, prefix netip.Prefix) string {
	switch {
	case !prefix.Contains(addr):
		return "is outside the subnet"
	case addr == prefix.Addr():
		return "is the subnet's network address"
	case addr.Is4() && addr == lastAddr(prefix):
		return "is the subnet's broadcast address"
	}
	return ""
}

// lastAddr returns the highest address of prefix.
func lastAddr(prefix netip.Prefix) netip.Addr {
	b := prefix.Addr().AsSlice()
	for bit := prefix.Bits(); bit < len(b)*8; bit++ {
		b[bit/8] |= 0x80 >> (bit % 8)
	}
	addr, _ := netip.AddrFromSlice(b)
	return addr
}

// subnetList joins the subnets for error messages.
func subnetList(subnets []subnet) string {
	names := make([]string, len(subnets))
	for i, s := range subnets {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

func invalidConfig(msg string) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
}
