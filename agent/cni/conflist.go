package cni

// This file owns rendering a network's CNI configuration list: shoal-bridge with
// shoal-ipam first, then the operator's plugins of the network spec. The shape of
// the shoal-bridge entry is the plugins' contract (plugins/README.md).

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/libcni"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
)

const (
	// specVersion is the CNI spec version of every rendered conflist.
	specVersion = "1.1.0"
	// bridgePlugin and ipamPlugin are shoal's own plugin types.
	bridgePlugin = "shoal-bridge"
	ipamPlugin   = "shoal-ipam"
	// bridgePrefix starts every shoal bridge's name; bridgeIDChars of the
	// network ID follow, keeping the name within the kernel's 15 characters.
	bridgePrefix  = "shl"
	bridgeIDChars = 10
)

// confList is the top level of a rendered conflist. The network ID names it,
// so the name and the libcni cache keys stay the same across renames.
type confList struct {
	CNIVersion string            `json:"cniVersion"`
	Name       string            `json:"name"`
	Plugins    []json.RawMessage `json:"plugins"`
}

// bridgeConf is the shoal-bridge entry of a conflist.
type bridgeConf struct {
	Type         string          `json:"type"`
	Bridge       string          `json:"bridge"`
	MTU          int             `json:"mtu"`
	HairpinMode  bool            `json:"hairpinMode"`
	IPMasq       bool            `json:"ipMasq"`
	Capabilities map[string]bool `json:"capabilities"`
	IPAM         ipamConf        `json:"ipam"`
}

// ipamConf is shoal-ipam's configuration, inside the shoal-bridge entry.
type ipamConf struct {
	Type    string       `json:"type"`
	Subnets []subnetConf `json:"subnets"`
	Routes  []routeConf  `json:"routes"`
}

type subnetConf struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
}

type routeConf struct {
	Dst string `json:"dst"`
}

// BridgeName is the name of the Linux bridge of the network with this ID on
// every node.
func BridgeName(networkID string) string {
	if len(networkID) > bridgeIDChars {
		networkID = networkID[:bridgeIDChars]
	}
	return bridgePrefix + networkID
}

// Conflist renders n's CNI configuration list (spec 1.1.0, named by n's ID):
// shoal-bridge with shoal-ipam over n's subnets, then n.Spec.Plugins in order,
// each plugin's config_json with its "type" set.
func (m *Manager) Conflist(n *api.Network) ([]byte, error) {
	if n.GetId() == "" {
		return nil, fmt.Errorf("render conflist: network has no ID")
	}
	bridge, err := m.bridgeEntry(n)
	if err != nil {
		return nil, err
	}
	list := confList{CNIVersion: specVersion, Name: n.GetId(), Plugins: []json.RawMessage{bridge}}
	for i, p := range n.GetSpec().GetPlugins() {
		entry, err := pluginEntry(p)
		if err != nil {
			return nil, fmt.Errorf("network %s: plugins[%d] (%q): %w", n.GetId(), i, p.GetType(), err)
		}
		list.Plugins = append(list.Plugins, entry)
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("network %s: encode conflist: %w", n.GetId(), err)
	}
	return b, nil
}

// confListOf renders n's conflist and parses it for libcni.
func (m *Manager) confListOf(n *api.Network) (*libcni.NetworkConfigList, error) {
	b, err := m.Conflist(n)
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("network %s: parse rendered conflist: %w", n.GetId(), err)
	}
	return list, nil
}

// subnetConfigs returns n's subnets, each with its gateway: the spec's or,
// when unset, the one the manager's allocator keeps free for it (ipam's
// default: the subnet's first assignable address).
func subnetConfigs(n *api.Network) ([]ipam.Config, error) {
	var out []ipam.Config
	for i, s := range n.GetSpec().GetIpam() {
		cfg, err := ipam.ConfigOf(s)
		if err != nil {
			return nil, fmt.Errorf("network %s: spec.ipam[%d]: %w", n.GetId(), i, err)
		}
		pool, err := ipam.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("network %s: spec.ipam[%d]: %w", n.GetId(), i, err)
		}
		out = append(out, pool.Config())
	}
	return out, nil
}

// Gateways returns the gateway address of each of n's subnets, with the
// subnet's prefix length: what n's bridge holds on every node.
func Gateways(n *api.Network) ([]netip.Prefix, error) {
	cfgs, err := subnetConfigs(n)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(cfgs))
	for _, cfg := range cfgs {
		out = append(out, netip.PrefixFrom(cfg.Gateway, cfg.Subnet.Bits()))
	}
	return out, nil
}

// bridgeEntry is the shoal-bridge entry of n's conflist. Each subnet's gateway
// is the spec's or, when unset, the one the manager's allocator keeps free for
// it (ipam's default: the subnet's first assignable address).
func (m *Manager) bridgeEntry(n *api.Network) (json.RawMessage, error) {
	specs := n.GetSpec().GetIpam()
	if len(specs) == 0 {
		return nil, fmt.Errorf("network %s: no subnet in spec.ipam", n.GetId())
	}
	conf := ipamConf{Type: ipamPlugin}
	var has4, has6 bool
	cfgs, err := subnetConfigs(n)
	if err != nil {
		return nil, err
	}
	for _, cfg := range cfgs {
		conf.Subnets = append(conf.Subnets, subnetConf{Subnet: cfg.Subnet.String(), Gateway: cfg.Gateway.String()})
		has4 = has4 || cfg.Subnet.Addr().Is4()
		has6 = has6 || cfg.Subnet.Addr().Is6()
	}
	// A default route per family the network has; shoal-ipam routes it via
	// that family's gateway.
	if has4 {
		conf.Routes = append(conf.Routes, routeConf{Dst: "0.0.0.0/0"})
	}
	if has6 {
		conf.Routes = append(conf.Routes, routeConf{Dst: "::/0"})
	}
	b, err := json.Marshal(bridgeConf{
		Type:         bridgePlugin,
		Bridge:       BridgeName(n.GetId()),
		MTU:          m.mtu,
		HairpinMode:  true,
		IPMasq:       true,
		Capabilities: map[string]bool{capIPs: true, capMAC: true},
		IPAM:         conf,
	})
	if err != nil {
		return nil, fmt.Errorf("network %s: encode %s entry: %w", n.GetId(), bridgePlugin, err)
	}
	return b, nil
}

// pluginEntry is an operator's plugin entry: its config_json object (an empty
// one when unset) with "type" set to the plugin's type.
func pluginEntry(p *api.CNIPlugin) (json.RawMessage, error) {
	if p.GetType() == "" {
		return nil, fmt.Errorf("no type")
	}
	fields := map[string]json.RawMessage{}
	if p.GetConfigJson() != "" {
		if err := json.Unmarshal([]byte(p.GetConfigJson()), &fields); err != nil {
			return nil, fmt.Errorf("config_json is not a JSON object: %w", err)
		}
		if fields == nil { // the JSON literal null
			return nil, fmt.Errorf("config_json is not a JSON object: null")
		}
	}
	typ, err := json.Marshal(p.GetType())
	if err != nil {
		return nil, fmt.Errorf("encode type: %w", err)
	}
	fields["type"] = typ
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	// libcni's own reading of the entry: it refuses what it cannot run
	// (a "capabilities" or "ipam" of the wrong shape, say).
	if _, err := libcni.NetworkPluginConfFromBytes(b); err != nil {
		return nil, fmt.Errorf("config_json: %w", err)
	}
	return b, nil
}
