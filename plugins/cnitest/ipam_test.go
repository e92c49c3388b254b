package cnitest

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// TestIPAMRejects checks that shoal-ipam refuses an ADD whose address the
// manager did not give or that lies outside the network's subnets, with a
// message naming the problem, and that the failed ADD leaves nothing behind.
func TestIPAMRejects(t *testing.T) {
	requireHost(t)
	n := newNetwork(t, networkOptions{})
	tests := []struct {
		name    string
		capArgs map[string]any
		want    func(n *network) string
	}{
		{
			name: "no address",
			want: func(*network) string {
				return "shoal-ipam: no address given: the manager assigns addresses; runtimeConfig.ips is empty"
			},
		},
		{
			name:    "address outside the subnet",
			capArgs: map[string]any{"ips": []string{"203.0.113.5/24"}},
			want: func(n *network) string {
				return "shoal-ipam: address 203.0.113.5 is outside the network's subnets (" + n.subnet.String() + ")"
			},
		},
		{
			name:    "the gateway",
			capArgs: map[string]any{"ips": []string{n.gatewayCIDR()}},
			want: func(n *network) string {
				return "shoal-ipam: address " + n.gateway.String() + " is the gateway of subnet " + n.subnet.String()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t)
			_, err := n.tryAdd(t, sb, "eth0", tt.capArgs)
			if err == nil || !strings.Contains(err.Error(), tt.want(n)) {
				t.Fatalf("ADD: error = %v, want one containing %q", err, tt.want(n))
			}
			if sb.hasLink(t, "eth0") {
				t.Error("the failed ADD left eth0 in the namespace")
			}
			if got := shoalVethsOn(t, n.bridge); len(got) != 0 {
				t.Errorf("the failed ADD left host veths %v on %s", got, n.bridge)
			}
		})
	}
}

// TestIPAMDirect runs shoal-ipam on its own: the result carries the address
// with its subnet's gateway and the configured route, in the configuration's
// version, and a missing address is an invalid-configuration error.
func TestIPAMDirect(t *testing.T) {
	requireHost(t)
	n := newNetwork(t, networkOptions{version: "0.4.0"})
	add := pluginCall{
		command:     "ADD",
		containerID: "ipam-direct-" + randomHex(t, 4),
		netns:       "/run/netns/none",
		ifName:      "eth0",
		conf:        n.pluginConf(t, map[string]any{"args": map[string]any{"cni": map[string]any{"ips": []string{n.addr(11)}}}}),
	}
	res := add.mustResult(t, "shoal-ipam")
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != n.addr(11) || res.IPs[0].Gateway.String() != n.gateway.String() {
		t.Errorf("shoal-ipam ADD IPs = %v, want %s via %s", res.IPs, n.addr(11), n.gateway)
	}
	if len(res.Routes) != 1 || res.Routes[0].GW.String() != n.gateway.String() {
		t.Errorf("shoal-ipam ADD routes = %v, want the default route via %s", res.Routes, n.gateway)
	}

	missing := add
	missing.conf = n.pluginConf(t, nil)
	if code := errorCode(t, missing.runErr("shoal-ipam")); code != types.ErrInvalidNetworkConfig {
		t.Errorf("shoal-ipam ADD without address: code %d, want %d", code, types.ErrInvalidNetworkConfig)
	}
	for _, command := range []string{"DEL", "GC", "STATUS"} {
		call := missing
		call.command = command
		call.conf = n.pluginConf(t, map[string]any{"cniVersion": "1.1.0"}) // GC and STATUS are 1.1.0's
		if err := call.runErr("shoal-ipam"); err != nil {
			t.Errorf("shoal-ipam %s: %v", command, err)
		}
	}
}
