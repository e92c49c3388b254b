package main

// This file owns the flags of `network create` and how they become a
// NetworkSpec. Everything that can be checked without the cluster is
// checked here, before any RPC: the form of every subnet, address, range
// and plugin, how --gateway and --ip-range pair with --subnet, and that
// each address lies inside its subnet. What needs the cluster (overlap
// with other networks, the VNI, the driver's own rules) is the manager's.
// Addresses are sent in their canonical form (netip's), so the manager
// compares like with like.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
)

// defaultNetworkDriver is the driver of a network created without --driver.
const defaultNetworkDriver = "overlay"

// networkFlags holds the raw values of `network create`'s flags.
type networkFlags struct {
	driver     string
	subnets    []string
	gateways   []string
	ipRanges   []string
	auxAddrs   []string
	attachable bool
	labels     []string
	plugins    []string
}

func addNetworkFlags(cmd *cobra.Command) *networkFlags {
	nf := &networkFlags{}
	flags := cmd.Flags()
	flags.StringVarP(&nf.driver, "driver", "d", defaultNetworkDriver, "network driver")
	flags.StringArrayVar(&nf.subnets, "subnet", nil,
		"a subnet of the network, in CIDR form (10.20.0.0/16 or fd00:20::/64); required, repeatable")
	flags.StringArrayVar(&nf.gateways, "gateway", nil,
		"gateway of the --subnet in the same position (default: its first usable address); repeatable")
	flags.StringArrayVar(&nf.ipRanges, "ip-range", nil,
		"addresses given out automatically in the --subnet in the same position, as CIDR or FIRST-LAST\n"+
			"(default: the whole subnet); pinned addresses may lie outside it; repeatable")
	flags.StringArrayVar(&nf.auxAddrs, "aux-address", nil,
		"an address kept from automatic allocation, as name=IP (docker's form) or a reserved range\n"+
			"name=CIDR or name=FIRST-LAST, in whichever --subnet holds it; pins may still use it; repeatable")
	flags.BoolVar(&nf.attachable, "attachable", false, "let standalone containers attach to the network")
	flags.StringArrayVar(&nf.labels, "label", nil, "a network label (key=value); repeatable")
	flags.StringArrayVar(&nf.plugins, "cni-plugin-json", nil,
		"a CNI plugin to chain after shoal's own, as its JSON configuration object with \"type\",\n"+
			"e.g. '{\"type\":\"bandwidth\",\"egressRate\":1000000}'; name, cniVersion and prevResult\n"+
			"are the runtime's to fill; chained in the order given; repeatable")
	return nf
}

// spec builds the spec of network name from the flags.
func (nf *networkFlags) spec(name string) (*api.NetworkSpec, error) {
	if name == "" {
		return nil, errors.New(`invalid NETWORK "": the name must not be empty`)
	}
	if nf.driver == "" {
		return nil, flagError("driver", nf.driver, errors.New("must not be empty"))
	}
	ipam, err := nf.ipam()
	if err != nil {
		return nil, err
	}
	spec := &api.NetworkSpec{
		Annotations: &api.Annotations{Name: name},
		Driver:      nf.driver,
		Ipam:        ipam,
		Attachable:  nf.attachable,
	}
	for _, v := range nf.labels {
		k, val, err := parseKeyValue(v)
		if err != nil {
			return nil, flagError("label", v, err)
		}
		if spec.Annotations.Labels == nil {
			spec.Annotations.Labels = map[string]string{}
		}
		spec.Annotations.Labels[k] = val // a later value wins, as with services
	}
	for _, v := range nf.plugins {
		p, err := parseCNIPlugin(v)
		if err != nil {
			return nil, flagError("cni-plugin-json", v, err)
		}
		spec.Plugins = append(spec.Plugins, p)
	}
	return spec, nil
}

// ipam pairs the i-th --gateway and --ip-range with the i-th --subnet and
// puts each --aux-address in the subnet holding it.
func (nf *networkFlags) ipam() ([]*api.IPAMConfig, error) {
	if len(nf.subnets) == 0 {
		return nil, errors.New("--subnet is required: give the network at least one subnet, e.g. --subnet 10.20.0.0/16")
	}
	for _, extra := range []struct {
		flag string
		n    int
	}{{"gateway", len(nf.gateways)}, {"ip-range", len(nf.ipRanges)}} {
		if extra.n > len(nf.subnets) {
			return nil, fmt.Errorf("%d --%s for %d --subnet: each --%s belongs to the --subnet in the same position",
				extra.n, extra.flag, len(nf.subnets), extra.flag)
		}
	}

	prefixes := make([]netip.Prefix, len(nf.subnets))
	configs := make([]*api.IPAMConfig, len(nf.subnets))
	for i, s := range nf.subnets {
		p, err := parseSubnet(s)
		if err != nil {
			return nil, flagError("subnet", s, err)
		}
		for j, prev := range prefixes[:i] {
			if p.Overlaps(prev) {
				return nil, flagError("subnet", s, fmt.Errorf("overlaps --subnet %s", nf.subnets[j]))
			}
		}
		prefixes[i] = p
		configs[i] = &api.IPAMConfig{Subnet: p.String()}
	}
	for i, s := range nf.gateways {
		gw, err := parseAddr(s)
		if err == nil && !prefixes[i].Contains(gw) {
			err = fmt.Errorf("not inside its --subnet %s", prefixes[i])
		}
		if err != nil {
			return nil, flagError("gateway", s, err)
		}
		configs[i].Gateway = gw.String()
	}
	for i, s := range nf.ipRanges {
		r, err := parseIPRange(s)
		if err == nil && !r.inside(prefixes[i]) {
			err = fmt.Errorf("not inside its --subnet %s", prefixes[i])
		}
		if err != nil {
			return nil, flagError("ip-range", s, err)
		}
		configs[i].IpRange = r.String()
	}
	for _, s := range nf.auxAddrs {
		if err := addAuxAddress(configs, prefixes, s); err != nil {
			return nil, flagError("aux-address", s, err)
		}
	}
	return configs, nil
}

// addAuxAddress parses name=IP, name=CIDR or name=FIRST-LAST and adds it
// to the subnet holding it.
func addAuxAddress(configs []*api.IPAMConfig, prefixes []netip.Prefix, s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return errors.New("want name=IP, e.g. router=10.20.0.2")
	}
	var r ipRange
	var err error
	if strings.ContainsAny(value, "-/") {
		r, err = parseIPRange(value)
	} else {
		r.first, err = parseAddr(value)
		r.last = r.first
	}
	if err != nil {
		return err
	}
	for _, c := range configs {
		if _, dup := c.GetAuxAddresses()[name]; dup {
			return fmt.Errorf("name %q is given twice", name)
		}
	}
	for i, p := range prefixes {
		if r.inside(p) {
			if configs[i].AuxAddresses == nil {
				configs[i].AuxAddresses = map[string]string{}
			}
			configs[i].AuxAddresses[name] = r.String()
			return nil
		}
	}
	return errors.New("not inside any --subnet")
}

// parseSubnet parses a subnet's CIDR, which must name the network itself:
// 10.20.0.1/16 is refused with 10.20.0.0/16 suggested, as docker does.
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("want a CIDR like 10.20.0.0/16 or fd00:20::/64")
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("write an IPv4 subnet in IPv4 form")
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("host bits are set; did you mean %s?", m)
	}
	return p, nil
}

// parseAddr parses one IPv4 or IPv6 address, without a zone.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, errors.New("want an IP address like 10.20.0.1 or fd00:20::1")
	case a.Zone() != "":
		return netip.Addr{}, errors.New("an address in a network has no zone")
	case a.Is4In6():
		return netip.Addr{}, errors.New("write an IPv4 address in IPv4 form")
	}
	return a, nil
}

// ipRange is a --ip-range or a reserved range: a CIDR, or FIRST-LAST when
// prefix is unset (one address when they are the same).
type ipRange struct {
	prefix      netip.Prefix
	first, last netip.Addr
}

// parseIPRange parses CIDR or FIRST-LAST (both ends included).
func parseIPRange(s string) (ipRange, error) {
	if firstStr, lastStr, ok := strings.Cut(s, "-"); ok {
		first, err := parseAddr(firstStr)
		if err != nil {
			return ipRange{}, fmt.Errorf("first address: %w", err)
		}
		last, err := parseAddr(lastStr)
		if err != nil {
			return ipRange{}, fmt.Errorf("last address: %w", err)
		}
		switch {
		case first.Is4() != last.Is4():
			return ipRange{}, errors.New("both ends must be IPv4, or both IPv6")
		case last.Less(first):
			return ipRange{}, errors.New("the first address comes after the last")
		}
		return ipRange{first: first, last: last}, nil
	}
	if !strings.Contains(s, "/") {
		return ipRange{}, errors.New("want a CIDR like 10.20.128.0/17 or a range FIRST-LAST like 10.20.0.10-10.20.0.99")
	}
	p, err := parseSubnet(s)
	if err != nil {
		return ipRange{}, err
	}
	return ipRange{prefix: p}, nil
}

func (r ipRange) inside(subnet netip.Prefix) bool {
	if r.prefix.IsValid() {
		return subnet.Bits() <= r.prefix.Bits() && subnet.Contains(r.prefix.Addr())
	}
	return subnet.Contains(r.first) && subnet.Contains(r.last)
}

func (r ipRange) String() string {
	if r.prefix.IsValid() {
		return r.prefix.String()
	}
	if r.first == r.last {
		return r.first.String()
	}
	return r.first.String() + "-" + r.last.String()
}

// cniRuntimeFields are the fields of a plugin's configuration the runtime
// fills when it builds the chain.
var cniRuntimeFields = []string{"name", "cniVersion", "prevResult"}

// parseCNIPlugin parses a plugin's JSON configuration object. It is kept
// whole, "type" included, compacted.
func parseCNIPlugin(s string) (*api.CNIPlugin, error) {
	var fields map[string]json.RawMessage
	if !json.Valid([]byte(s)) || json.Unmarshal([]byte(s), &fields) != nil || fields == nil {
		return nil, errors.New(`want a JSON object like {"type":"bandwidth","egressRate":1000000}`)
	}
	var typ string
	if raw, ok := fields["type"]; !ok || json.Unmarshal(raw, &typ) != nil || typ == "" {
		return nil, errors.New(`"type" must be a non-empty string naming the plugin`)
	}
	if strings.ContainsAny(typ, "/\\ \t\n") {
		return nil, fmt.Errorf("type %q must be a plugin's name, without a path or white space", typ)
	}
	for _, f := range cniRuntimeFields {
		if _, ok := fields[f]; ok {
			return nil, fmt.Errorf("%q is filled in by the runtime: leave it out", f)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, fmt.Errorf("compact JSON: %w", err)
	}
	return &api.CNIPlugin{Type: typ, ConfigJson: buf.String()}, nil
}
