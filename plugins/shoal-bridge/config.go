// This file owns shoal-bridge's network configuration: decoding, defaults and
// validation, done once before any command touches the node.

package main

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
)

const (
	// defaultMTU leaves room for VXLAN encapsulation on a 1500-byte underlay.
	defaultMTU = 1450
	minMTU     = 68
	maxMTU     = 65535
)

// netConf is one shoal-bridge entry of a network's conflist, as the agent
// renders it and the runtime completes it.
type netConf struct {
	types.PluginConf

	// Bridge names the network's bridge in the node's namespace.
	Bridge string `json:"bridge"`
	// MTU is set on the bridge and on both veth ends; 0 means defaultMTU.
	MTU int `json:"mtu"`
	// HairpinMode lets a container reach itself through a service address;
	// nil means true.
	HairpinMode *bool `json:"hairpinMode"`
	// IPMasq masquerades traffic that leaves a subnet through another interface.
	IPMasq bool `json:"ipMasq"`

	// RuntimeConfig.MAC is filled by the runtime from the "mac" capability.
	RuntimeConfig struct {
		MAC string `json:"mac,omitempty"`
	} `json:"runtimeConfig"`
}

// config is a validated configuration with its defaults applied.
type config struct {
	netConf
	hairpin bool
}

// loadConfig decodes and validates stdin's network configuration. Its errors
// are CNI errors with the code the spec gives for them. The runtime's part,
// runtimeConfig, is validated by the commands that use it (see runtimeMAC), so
// that a DEL after an ADD refused for a bad MAC can still clean up.
func loadConfig(stdin []byte) (*config, error) {
	var n netConf
	if err := json.Unmarshal(stdin, &n); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "shoal-bridge: decode network configuration", err.Error())
	}
	c := &config{netConf: n, hairpin: true}
	if n.HairpinMode != nil {
		c.hairpin = *n.HairpinMode
	}
	if c.MTU == 0 {
		c.MTU = defaultMTU
	}
	if err := c.validate(); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "shoal-bridge: "+err.Error(), "")
	}
	return c, nil
}

// runtimeMAC returns the container MAC the runtime asked for, or nil when it
// asked for none (ADD then derives one, see macFromIPv4).
func (c *config) runtimeMAC() (net.HardwareAddr, error) {
	if c.RuntimeConfig.MAC == "" {
		return nil, nil
	}
	mac, err := parseUnicastMAC(c.RuntimeConfig.MAC)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "shoal-bridge: runtimeConfig.mac: "+err.Error(), "")
	}
	return mac, nil
}

func (c *config) validate() error {
	if c.Bridge == "" {
		return fmt.Errorf("bridge is required: the name of the network's bridge")
	}
	if err := utils.ValidateInterfaceName(c.Bridge); err != nil {
		return fmt.Errorf("bridge %q is not a valid interface name: %s", c.Bridge, err.Msg)
	}
	if c.MTU < minMTU || c.MTU > maxMTU {
		return fmt.Errorf("mtu %d is out of range [%d, %d]", c.MTU, minMTU, maxMTU)
	}
	if c.IPAM.Type == "" {
		return fmt.Errorf("ipam.type is required: shoal-bridge takes its addresses from an IPAM plugin (shoal-ipam)")
	}
	return nil
}

// parseUnicastMAC accepts a 6-byte unicast Ethernet address.
func parseUnicastMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a MAC address: %w", s, err)
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("%q is not a 6-byte Ethernet address", s)
	}
	if mac[0]&1 != 0 {
		return nil, fmt.Errorf("%s is a multicast address", mac)
	}
	return mac, nil
}

// prevResult decodes the previous result CHECK is given.
func (c *config) prevResult() (*current.Result, error) {
	if c.RawPrevResult == nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "shoal-bridge: prevResult is missing: CHECK compares against the result of ADD", "")
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "shoal-bridge: decode prevResult", err.Error())
	}
	prev, err := current.NewResultFromResult(c.PrevResult)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "shoal-bridge: convert prevResult", err.Error())
	}
	return prev, nil
}
