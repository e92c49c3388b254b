// This file holds the CNI commands. ADD and CHECK validate the runtime's
// addresses against the configuration; DEL, GC and STATUS have nothing to do,
// because shoal-ipam holds no state: the manager's allocator does.

package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// cmdAdd returns the runtime's addresses with their subnets' gateways and the
// configured routes.
func cmdAdd(args *skel.CmdArgs) error {
	conf, ips, err := addressesOf(args)
	if err != nil {
		return err
	}
	result := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		IPs:        ips,
		Routes:     routesFor(conf.routes, ips),
	}
	return types.PrintResult(result, conf.raw.CNIVersion)
}

// cmdCheck validates the runtime's addresses against the configuration and,
// when a previous result is given, checks that it holds each of them with its
// subnet's gateway.
func cmdCheck(args *skel.CmdArgs) error {
	conf, ips, err := addressesOf(args)
	if err != nil {
		return err
	}
	if conf.raw.RawPrevResult == nil {
		return nil
	}
	prev, err := parsePrevResult(args.StdinData)
	if err != nil {
		return err
	}
	for _, want := range ips {
		if err := findIP(prev.IPs, want); err != nil {
			return fmt.Errorf("shoal-ipam: check: %w", err)
		}
	}
	return nil
}

// addressesOf reads the configuration and the runtime's addresses, each with its subnet's
// gateway.
func addressesOf(args *skel.CmdArgs) (*config, []*current.IPConfig, error) {
	conf, err := loadConfig(args.StdinData)
	if err != nil {
		return nil, nil, err
	}
	ips, err := assignSubnets(requestedAddresses(conf.raw, args.Args), conf.subnets)
	return conf, ips, err
}

// findIP reports whether ips holds want's address with want's gateway.
func findIP(ips []*current.IPConfig, want *current.IPConfig) error {
	for _, got := range ips {
		if !got.Address.IP.Equal(want.Address.IP) {
			continue
		}
		if got.Address.String() != want.Address.String() {
			return fmt.Errorf("previous result has %s, the configuration gives %s", got.Address.String(), want.Address.String())
		}
		if !got.Gateway.Equal(want.Gateway) {
			return fmt.Errorf("previous result gives %s gateway %s, the configuration gives %s", want.Address.IP, got.Gateway, want.Gateway)
		}
		return nil
	}
	return fmt.Errorf("address %s is not in the previous result (which has %s)", want.Address.String(), ipList(ips))
}

func ipList(ips []*current.IPConfig) string {
	if len(ips) == 0 {
		return "no addresses"
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = ip.Address.String()
	}
	return strings.Join(addrs, ", ")
}

// parsePrevResult decodes prevResult into the current result type.
func parsePrevResult(stdin []byte) (*current.Result, error) {
	var pc types.PluginConf
	if err := json.Unmarshal(stdin, &pc); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "shoal-ipam: decode network configuration", err.Error())
	}
	if err := version.ParsePrevResult(&pc); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "shoal-ipam: decode prevResult", err.Error())
	}
	prev, err := current.NewResultFromResult(pc.PrevResult)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "shoal-ipam: convert prevResult", err.Error())
	}
	return prev, nil
}

// cmdDel succeeds: shoal-ipam holds nothing to free. It does not even require
// a valid configuration, so that DEL cannot fail on one rendered by an older
// agent.
func cmdDel(*skel.CmdArgs) error { return nil }

// cmdGC succeeds: shoal-ipam holds no attachments to collect.
func cmdGC(*skel.CmdArgs) error { return nil }

// cmdStatus succeeds: shoal-ipam needs no daemon, file or lock to serve ADDs,
// only its configuration, which ADD validates.
func cmdStatus(*skel.CmdArgs) error { return nil }
