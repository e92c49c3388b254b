package cni

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
)

func TestConflist(t *testing.T) {
	const id = "k3v9x0a7c1m2q8r4t6y5z0w1p"
	tests := []struct {
		name    string
		mtu     int
		network *api.Network
		want    string
	}{
		{
			name:    "one subnet, default gateway",
			network: testNetwork(id, []string{"198.18.0.0/24"}),
			want: `{"cniVersion": "1.1.0", "name": "k3v9x0a7c1m2q8r4t6y5z0w1p", "plugins": [
				{"type": "shoal-bridge", "bridge": "shlk3v9x0a7c1", "mtu": 1450, "hairpinMode": true, "ipMasq": true,
				 "capabilities": {"ips": true, "mac": true},
				 "ipam": {"type": "shoal-ipam", "subnets": [{"subnet": "198.18.0.0/24", "gateway": "198.18.0.1"}],
				          "routes": [{"dst": "0.0.0.0/0"}]}}]}`,
		},
		{
			name: "gateways set, dual stack, node MTU",
			mtu:  9000,
			network: &api.Network{Id: id, Spec: &api.NetworkSpec{Ipam: []*api.IPAMConfig{
				{Subnet: "198.18.4.0/22", Gateway: "198.18.7.254", IpRange: "198.18.5.0/24", AuxAddresses: map[string]string{"db": "198.18.4.9"}},
				{Subnet: "fd00:5::/64"},
			}}},
			want: `{"cniVersion": "1.1.0", "name": "k3v9x0a7c1m2q8r4t6y5z0w1p", "plugins": [
				{"type": "shoal-bridge", "bridge": "shlk3v9x0a7c1", "mtu": 9000, "hairpinMode": true, "ipMasq": true,
				 "capabilities": {"ips": true, "mac": true},
				 "ipam": {"type": "shoal-ipam",
				          "subnets": [{"subnet": "198.18.4.0/22", "gateway": "198.18.7.254"},
				                      {"subnet": "fd00:5::/64", "gateway": "fd00:5::1"}],
				          "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}]}`,
		},
		{
			name: "extra plugins in order, type set over config_json's",
			network: testNetwork(id, []string{"198.18.0.0/24"},
				&api.CNIPlugin{Type: "tuning", ConfigJson: `{"sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}, "promisc": true}`},
				&api.CNIPlugin{Type: "bandwidth"},
				&api.CNIPlugin{Type: "firewall", ConfigJson: ` {"type": "not-this", "backend": "iptables", "capabilities": {"portMappings": true}} `},
			),
			want: `{"cniVersion": "1.1.0", "name": "k3v9x0a7c1m2q8r4t6y5z0w1p", "plugins": [
				{"type": "shoal-bridge", "bridge": "shlk3v9x0a7c1", "mtu": 1450, "hairpinMode": true, "ipMasq": true,
				 "capabilities": {"ips": true, "mac": true},
				 "ipam": {"type": "shoal-ipam", "subnets": [{"subnet": "198.18.0.0/24", "gateway": "198.18.0.1"}],
				          "routes": [{"dst": "0.0.0.0/0"}]}},
				{"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}, "promisc": true},
				{"type": "bandwidth"},
				{"type": "firewall", "backend": "iptables", "capabilities": {"portMappings": true}}]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newEnv(t).manager(t, tc.mtu)
			got, err := m.Conflist(tc.network)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := canonicalJSON(t, got), canonicalJSON(t, []byte(tc.want)); g != w {
				t.Errorf("Conflist =\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func TestConflistRefuses(t *testing.T) {
	const id = "b7n2c4d6e8f0g1h3j5k7m9p0q"
	subnet := []string{"198.18.0.0/24"}
	tests := []struct {
		name    string
		network *api.Network
		want    []string // substrings of the error
		wantErr error    // when set, errors.Is must hold
	}{
		{
			name: "bad JSON in the second extra plugin",
			network: testNetwork(id, subnet,
				&api.CNIPlugin{Type: "tuning", ConfigJson: `{}`},
				&api.CNIPlugin{Type: "bandwidth", ConfigJson: `{"ingressRate": 1000,`}),
			want: []string{"network " + id, "plugins[1]", `"bandwidth"`, "config_json is not a JSON object"},
		},
		{
			name:    "config_json an array",
			network: testNetwork(id, subnet, &api.CNIPlugin{Type: "tuning", ConfigJson: `[1]`}),
			want:    []string{"network " + id, "plugins[0]", "config_json is not a JSON object"},
		},
		{
			name:    "config_json null",
			network: testNetwork(id, subnet, &api.CNIPlugin{Type: "tuning", ConfigJson: `null`}),
			want:    []string{"network " + id, "plugins[0]", "not a JSON object: null"},
		},
		{
			name:    "capabilities of the wrong shape",
			network: testNetwork(id, subnet, &api.CNIPlugin{Type: "portmap", ConfigJson: `{"capabilities": "portMappings"}`}),
			want:    []string{"network " + id, "plugins[0]", "config_json"},
		},
		{
			name:    "no type",
			network: testNetwork(id, subnet, &api.CNIPlugin{ConfigJson: `{}`}),
			want:    []string{"network " + id, "plugins[0]", "no type"},
		},
		{
			name:    "no subnet",
			network: &api.Network{Id: id, Spec: &api.NetworkSpec{}},
			want:    []string{"network " + id, "no subnet"},
		},
		{
			name:    "bad subnet",
			network: testNetwork(id, []string{"198.18.0.0/33"}),
			want:    []string{"network " + id, "spec.ipam[0]"},
			wantErr: ipam.ErrInvalidSubnet,
		},
		{
			name: "gateway outside the subnet",
			network: &api.Network{Id: id, Spec: &api.NetworkSpec{Ipam: []*api.IPAMConfig{
				{Subnet: "198.18.0.0/24"}, {Subnet: "198.18.1.0/24", Gateway: "198.18.0.1"}}}},
			want:    []string{"network " + id, "spec.ipam[1]", "gateway"},
			wantErr: ipam.ErrOutsideSubnet,
		},
		{
			name:    "no ID",
			network: &api.Network{Spec: testNetwork(id, subnet).Spec},
			want:    []string{"no ID"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newEnv(t).manager(t, 0)
			b, err := m.Conflist(tc.network)
			if err == nil {
				t.Fatalf("Conflist = %s, want an error", b)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Conflist error %q does not say %q", err, w)
				}
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Conflist error %q is not %v", err, tc.wantErr)
			}
		})
	}
}

func TestBridgeName(t *testing.T) {
	for id, want := range map[string]string{
		"k3v9x0a7c1m2q8r4t6y5z0w1p": "shlk3v9x0a7c1",
		"short":                     "shlshort",
	} {
		if got := BridgeName(id); got != want {
			t.Errorf("BridgeName(%q) = %q, want %q", id, got, want)
		}
	}
}

// canonicalJSON re-encodes b with sorted keys and indentation, for comparing
// and for readable failures.
func canonicalJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
