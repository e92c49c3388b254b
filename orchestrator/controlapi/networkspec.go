package controlapi

// This file owns the validation of a network spec on its own:
// ValidateNetworkSpec checks the name, the driver, every subnet (by
// building the ipam.Pool the allocator will build from it, so a subnet is
// refused here exactly when allocation could not use it), the subnets'
// overlaps with each other and the extra CNI plugins; it reads nothing.
// What a valid spec may still not ask of this cluster (a taken name, a
// subnet another network holds, a VNI) is checked in networks.go.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
)

// DriverOverlay is the only network driver, and the one an empty driver
// means.
const DriverOverlay = "overlay"

// MaxNetworkSpecBytes bounds a network spec's encoded size: every agent
// whose tasks attach to the network receives it, plugin configurations
// included.
const MaxNetworkSpecBytes = 32 << 10

// networkNamePattern is a DNS label: letters, digits and '-', starting and
// ending with a letter or digit, at most 63 characters. Network names may
// end up in DNS names (a task's alias on a network), so they are held to
// the stricter rule services are not.
var networkNamePattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// pluginTypePattern is a CNI plugin's type: the agent runs the binary of
// that name from its CNI directory, so no path separators and no "..".
var pluginTypePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// pluginRuntimeKeys are the keys of a chained plugin's configuration that
// the agent fills when it builds the chain.
var pluginRuntimeKeys = []string{"name", "cniVersion", "prevResult"}

// ValidateNetworkSpec checks a network spec on its own and returns nil or
// the first *FieldError found. It reads no state: checks against the
// cluster (unique name, subnets free of other networks) come on top when
// the network is created.
func ValidateNetworkSpec(spec *api.NetworkSpec) error {
	_, err := normalizeNetworkSpec(spec)
	return err
}

// normalizeNetworkSpec validates spec and returns the copy a network is
// stored with: the driver spelled out and each subnet in canonical form
// with its gateway filled in (the default one, the subnet's first
// assignable address, when none was given), so what inspect shows is what
// the allocator uses.
func normalizeNetworkSpec(spec *api.NetworkSpec) (*api.NetworkSpec, error) {
	if spec == nil {
		return nil, invalid("spec", "missing")
	}
	if n := proto.Size(spec); n > MaxNetworkSpecBytes {
		return nil, invalid("spec", "%d bytes encoded, more than the %d a network spec may have", n, MaxNetworkSpecBytes)
	}
	if err := validateNetworkAnnotations(spec.GetAnnotations()); err != nil {
		return nil, err
	}
	switch spec.Driver {
	case "", DriverOverlay:
	default:
		return nil, invalid("spec.driver", "%q is not a network driver: the only one is %q", spec.Driver, DriverOverlay)
	}
	out := proto.Clone(spec).(*api.NetworkSpec)
	out.Driver = DriverOverlay
	subnets, err := normalizeIPAM(out.Ipam)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Addr().Is4() }) {
		return nil, invalid("spec.ipam", "needs at least one IPv4 subnet")
	}
	if err := validatePlugins(out.Plugins); err != nil {
		return nil, err
	}
	return out, nil
}

func validateNetworkAnnotations(a *api.Annotations) error {
	name := a.GetName()
	switch {
	case name == "":
		return invalid("spec.annotations.name", "required")
	case len(name) > 63:
		return invalid("spec.annotations.name", "%q is %d characters long, more than 63", name, len(name))
	case !networkNamePattern.MatchString(name):
		return invalid("spec.annotations.name", "%q is not a valid network name: it must be a DNS label, letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return validateLabels("spec.annotations.labels", a.GetLabels())
}

// normalizeIPAM validates every subnet config, in place canonicalises its
// subnet and fills its gateway, and returns the subnets in order. Two
// subnets of one spec must not overlap.
func normalizeIPAM(configs []*api.IPAMConfig) ([]netip.Prefix, error) {
	subnets := make([]netip.Prefix, 0, len(configs))
	for i, c := range configs {
		field := fmt.Sprintf("spec.ipam[%d]", i)
		pool, err := ipamPool(field, c)
		if err != nil {
			return nil, err
		}
		sub := pool.Config().Subnet
		for j, prev := range subnets {
			if prev.Overlaps(sub) {
				return nil, invalid(field+".subnet", "%s overlaps spec.ipam[%d].subnet %s", sub, j, prev)
			}
		}
		subnets = append(subnets, sub)
		c.Subnet, c.Gateway = sub.String(), pool.Config().Gateway.String()
	}
	return subnets, nil
}

// ipamPool builds the pool the allocator will build from c, and so refuses
// c by the allocator's rules; field is c's place in the spec, and the
// error names the part of c at fault.
func ipamPool(field string, c *api.IPAMConfig) (*ipam.Pool, error) {
	if c == nil || c.Subnet == "" {
		return nil, invalid(field+".subnet", "required")
	}
	// ConfigOf's errors name c's parts as the spec does; they come in the
	// order of c's parts, an aux address without a name (the first name in
	// order) before any aux address's value.
	cfg, err := ipam.ConfigOf(c)
	var ie *ipam.Error
	if err != nil && !errors.As(err, &ie) {
		return nil, invalid(field, "%v", err)
	}
	_, unnamed := c.AuxAddresses[""]
	switch {
	case err != nil && ie.Field == "subnet":
		return nil, invalid(field+".subnet", "%q is not a CIDR subnet (10.20.0.0/16, fd00:20::/64)", c.Subnet)
	case err != nil && ie.Field == "gateway":
		return nil, invalid(field+".gateway", "%q is not an IP address", c.Gateway)
	case err != nil && ie.Field == "ip_range":
		return nil, ipamFieldError(field+".ip_range", err)
	case unnamed:
		return nil, invalid(field+".aux_addresses", "an aux address has no name")
	case err != nil:
		return nil, ipamFieldError(field+"."+ie.Field, err)
	}
	pool, err := ipam.New(cfg)
	if err != nil {
		if !errors.As(err, &ie) {
			return nil, invalid(field, "%v", err)
		}
		// Reserved follows the aux names' order (ConfigOf).
		names := slices.Sorted(maps.Keys(c.AuxAddresses))
		switch {
		case ie.Field == "subnet":
			return nil, ipamFieldError(field+".subnet", err)
		case ie.Field == "gateway":
			return nil, ipamFieldError(field+".gateway", err)
		case ie.Field == "range":
			return nil, ipamFieldError(field+".ip_range", err)
		case strings.HasPrefix(ie.Field, "reserved["):
			var k int
			if _, scanErr := fmt.Sscanf(ie.Field, "reserved[%d]", &k); scanErr == nil && k >= 0 && k < len(names) {
				return nil, ipamFieldError(fmt.Sprintf("%s.aux_addresses[%s]", field, names[k]), err)
			}
			return nil, ipamFieldError(field+".aux_addresses", err)
		}
		return nil, ipamFieldError(field, err)
	}
	return pool, nil
}

// ipamFieldError turns an ipam error into a FieldError naming the spec's
// field, keeping the value and the reason ipam gave.
func ipamFieldError(field string, err error) *FieldError {
	var ie *ipam.Error
	if !errors.As(err, &ie) {
		return invalid(field, "%v", err)
	}
	if ie.Value == "" {
		return invalid(field, "%v", ie.Err)
	}
	return invalid(field, "%s: %v", ie.Value, ie.Err)
}

// validatePlugins checks the extra CNI plugins: each names its type, and a
// configuration, if any, is a JSON object without the keys the agent fills
// and, if it names a type, the plugin's own.
func validatePlugins(plugins []*api.CNIPlugin) error {
	for i, p := range plugins {
		field := fmt.Sprintf("spec.plugins[%d]", i)
		switch {
		case p.GetType() == "":
			return invalid(field+".type", "required")
		case !pluginTypePattern.MatchString(p.Type) || strings.Contains(p.Type, ".."):
			return invalid(field+".type", "%q is not a plugin name: letters, digits, '_', '.' and '-', no path", p.Type)
		}
		if len(p.ConfigJson) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(p.ConfigJson), &obj); err != nil || obj == nil {
			return invalid(field+".config_json", "not a JSON object")
		}
		for _, k := range pluginRuntimeKeys {
			if _, ok := obj[k]; ok {
				return invalid(field+".config_json", "sets %q, which the agent fills when it builds the chain", k)
			}
		}
		if raw, ok := obj["type"]; ok {
			var typ string
			if err := json.Unmarshal(raw, &typ); err != nil || typ != p.Type {
				return invalid(field+".config_json", "its type %s is not the plugin's type %q", raw, p.Type)
			}
		}
	}
	return nil
}
