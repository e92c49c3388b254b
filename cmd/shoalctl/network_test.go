package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

func TestNetworkCreateSpec(t *testing.T) {
	// overlay is what `network create --subnet 10.20.0.0/16 NAME` sends.
	overlay := func(name string, ipam ...*api.IPAMConfig) *api.NetworkSpec {
		return &api.NetworkSpec{Annotations: &api.Annotations{Name: name}, Driver: "overlay", Ipam: ipam}
	}
	tests := []struct {
		name string
		args []string
		want *api.NetworkSpec
	}{
		{
			name: "one subnet",
			args: []string{"--subnet", "10.20.0.0/16", "front"},
			want: overlay("front", &api.IPAMConfig{Subnet: "10.20.0.0/16"}),
		},
		{
			name: "everything",
			args: []string{"-d", "overlay", "--subnet", "10.20.0.0/16", "--gateway", "10.20.0.1",
				"--ip-range", "10.20.128.0/17", "--aux-address", "router=10.20.0.2", "--aux-address", "dns=10.20.0.3",
				"--attachable", "--label", "team=edge", "--label", "flag", "--label", "team=core",
				"--cni-plugin-json", `{"type": "bandwidth", "egressRate": 1000000}`,
				"--cni-plugin-json", `{"type":"tuning","sysctl":{"net.core.somaxconn":"500"}}`, "front"},
			want: &api.NetworkSpec{
				Annotations: &api.Annotations{Name: "front", Labels: map[string]string{"team": "core", "flag": ""}},
				Driver:      "overlay",
				Ipam: []*api.IPAMConfig{{
					Subnet:       "10.20.0.0/16",
					Gateway:      "10.20.0.1",
					IpRange:      "10.20.128.0/17",
					AuxAddresses: map[string]string{"router": "10.20.0.2", "dns": "10.20.0.3"},
				}},
				Attachable: true,
				Plugins: []*api.CNIPlugin{
					{Type: "bandwidth", ConfigJson: `{"type":"bandwidth","egressRate":1000000}`},
					{Type: "tuning", ConfigJson: `{"type":"tuning","sysctl":{"net.core.somaxconn":"500"}}`},
				},
			},
		},
		{
			name: "gateways and ranges pair with subnets in order; aux addresses go where they fit",
			args: []string{"--subnet", "10.30.0.0/24", "--subnet", "FD00:30::/64", "--subnet", "10.31.0.0/24",
				"--gateway", "10.30.0.254", "--gateway", "fd00:30::1",
				"--ip-range", "10.30.0.10-10.30.0.99", "--ip-range", "fd00:30::100/120",
				"--aux-address", "v6=FD00:30::2", "--aux-address", "third=10.31.0.5", "back"},
			want: overlay("back",
				&api.IPAMConfig{Subnet: "10.30.0.0/24", Gateway: "10.30.0.254", IpRange: "10.30.0.10-10.30.0.99"},
				&api.IPAMConfig{Subnet: "fd00:30::/64", Gateway: "fd00:30::1", IpRange: "fd00:30::100/120",
					AuxAddresses: map[string]string{"v6": "fd00:30::2"}},
				&api.IPAMConfig{Subnet: "10.31.0.0/24", AuxAddresses: map[string]string{"third": "10.31.0.5"}},
			),
		},
		{
			name: "a range of one address, a range as wide as the subnet, reserved ranges",
			args: []string{"--subnet", "10.40.0.0/24", "--subnet", "10.41.0.0/24",
				"--ip-range", "10.40.0.7-10.40.0.7", "--ip-range", "10.41.0.0/24",
				"--aux-address", "legacy=10.41.0.200-10.41.0.220", "--aux-address", "lab=10.40.0.128/26", "n"},
			want: overlay("n",
				&api.IPAMConfig{Subnet: "10.40.0.0/24", IpRange: "10.40.0.7",
					AuxAddresses: map[string]string{"lab": "10.40.0.128/26"}},
				&api.IPAMConfig{Subnet: "10.41.0.0/24", IpRange: "10.41.0.0/24",
					AuxAddresses: map[string]string{"legacy": "10.41.0.200-10.41.0.220"}},
			),
		},
		{
			name: "the driver is the manager's to judge",
			args: []string{"--driver", "macvlan", "--subnet", "10.50.0.0/24", "n"},
			want: &api.NetworkSpec{Annotations: &api.Annotations{Name: "n"}, Driver: "macvlan",
				Ipam: []*api.IPAMConfig{{Subnet: "10.50.0.0/24"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append([]string{"network", "create"}, tt.args...)...)
			res.Check(t, 0, idNewNetwork+"\n", "")
			checkRequests(t, f, "CreateNetwork", &f.networkCreates, []*api.CreateNetworkRequest{{Spec: tt.want}})
		})
	}
}

func TestNetworkCreateBadFlags(t *testing.T) {
	const plugin = "--cni-plugin-json"
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--subnet is required: give the network at least one subnet"},
		{[]string{"--subnet", "10.0.0.0"}, `invalid --subnet "10.0.0.0": want a CIDR like 10.20.0.0/16`},
		{[]string{"--subnet", "10.0.0.0/33"}, `invalid --subnet "10.0.0.0/33": want a CIDR`},
		{[]string{"--subnet", "10.0.0.300/24"}, `invalid --subnet "10.0.0.300/24": want a CIDR`},
		{[]string{"--subnet", "10.0.0.1/24"}, `invalid --subnet "10.0.0.1/24": host bits are set; did you mean 10.0.0.0/24?`},
		{[]string{"--subnet", "fd00::1/64"}, `invalid --subnet "fd00::1/64": host bits are set; did you mean fd00::/64?`},
		{[]string{"--subnet", "::ffff:10.0.0.0/120"}, `invalid --subnet "::ffff:10.0.0.0/120": write an IPv4 subnet in IPv4 form`},
		{[]string{"--subnet", "10.0.0.0/16", "--subnet", "10.0.1.0/24"}, `invalid --subnet "10.0.1.0/24": overlaps --subnet 10.0.0.0/16`},
		{[]string{"--subnet", "10.0.0.0/24", "--gateway", "10.0.0.1", "--gateway", "10.0.1.1"},
			"2 --gateway for 1 --subnet: each --gateway belongs to the --subnet in the same position"},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.0/25", "--ip-range", "10.0.0.128/25"},
			"2 --ip-range for 1 --subnet: each --ip-range belongs to the --subnet in the same position"},
		{[]string{"--subnet", "10.0.0.0/24", "--gateway", "10.0.0"}, `invalid --gateway "10.0.0": want an IP address`},
		{[]string{"--subnet", "10.0.0.0/24", "--gateway", "10.0.0.1/24"}, `invalid --gateway "10.0.0.1/24": want an IP address`},
		{[]string{"--subnet", "fe80::/64", "--gateway", "fe80::1%eth0"}, `invalid --gateway "fe80::1%eth0": an address in a network has no zone`},
		{[]string{"--subnet", "10.0.0.0/24", "--gateway", "10.0.1.1"}, `invalid --gateway "10.0.1.1": not inside its --subnet 10.0.0.0/24`},
		{[]string{"--subnet", "10.0.0.0/24", "--subnet", "10.0.1.0/24", "--gateway", "10.0.1.1"},
			`invalid --gateway "10.0.1.1": not inside its --subnet 10.0.0.0/24`},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.10"}, `invalid --ip-range "10.0.0.10": want a CIDR like 10.20.128.0/17 or a range FIRST-LAST`},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.8/24"}, `invalid --ip-range "10.0.0.8/24": host bits are set; did you mean 10.0.0.0/24?`},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.0/23"}, `invalid --ip-range "10.0.0.0/23": not inside its --subnet 10.0.0.0/24`},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.10-10.0.1.10"}, `invalid --ip-range "10.0.0.10-10.0.1.10": not inside its --subnet 10.0.0.0/24`},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.99-10.0.0.10"}, `invalid --ip-range "10.0.0.99-10.0.0.10": the first address comes after the last`},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.10-"}, `invalid --ip-range "10.0.0.10-": last address: want an IP address`},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "x-10.0.0.10"}, `invalid --ip-range "x-10.0.0.10": first address: want an IP address`},
		{[]string{"--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.10-fd00::1"}, `invalid --ip-range "10.0.0.10-fd00::1": both ends must be IPv4, or both IPv6`},
		{[]string{"--subnet", "10.0.0.0/24", "--aux-address", "10.0.0.2"}, `invalid --aux-address "10.0.0.2": want name=IP`},
		{[]string{"--subnet", "10.0.0.0/24", "--aux-address", "=10.0.0.2"}, `invalid --aux-address "=10.0.0.2": want name=IP`},
		{[]string{"--subnet", "10.0.0.0/24", "--aux-address", "r=10.0.0"}, `invalid --aux-address "r=10.0.0": want an IP address`},
		{[]string{"--subnet", "10.0.0.0/24", "--aux-address", "r=10.9.0.2"}, `invalid --aux-address "r=10.9.0.2": not inside any --subnet`},
		{[]string{"--subnet", "10.0.0.0/24", "--aux-address", "r=10.0.0.250-10.0.1.5"}, `invalid --aux-address "r=10.0.0.250-10.0.1.5": not inside any --subnet`},
		{[]string{"--subnet", "10.0.0.0/24", "--aux-address", "r=10.0.0.9-10.0.0.1"}, `invalid --aux-address "r=10.0.0.9-10.0.0.1": the first address comes after the last`},
		{[]string{"--subnet", "10.0.0.0/24", "--aux-address", "r=10.0.0.2", "--aux-address", "r=10.0.0.3"},
			`invalid --aux-address "r=10.0.0.3": name "r" is given twice`},
		{[]string{"--subnet", "10.0.0.0/24", "--label", "=v"}, `invalid --label "=v": want key=value with a non-empty key`},
		{[]string{"--subnet", "10.0.0.0/24", "--driver", ""}, `invalid --driver "": must not be empty`},
		{[]string{"--subnet", "10.0.0.0/24", plugin, "bandwidth"}, `invalid --cni-plugin-json "bandwidth": want a JSON object`},
		{[]string{"--subnet", "10.0.0.0/24", plugin, `["bandwidth"]`}, `invalid --cni-plugin-json "[\"bandwidth\"]": want a JSON object`},
		{[]string{"--subnet", "10.0.0.0/24", plugin, `null`}, `invalid --cni-plugin-json "null": want a JSON object`},
		{[]string{"--subnet", "10.0.0.0/24", plugin, `{"type":"a"} {}`}, `invalid --cni-plugin-json "{\"type\":\"a\"} {}": want a JSON object`},
		{[]string{"--subnet", "10.0.0.0/24", plugin, `{"egressRate":1}`}, `invalid --cni-plugin-json "{\"egressRate\":1}": "type" must be a non-empty string`},
		{[]string{"--subnet", "10.0.0.0/24", plugin, `{"type":7}`}, `invalid --cni-plugin-json "{\"type\":7}": "type" must be a non-empty string`},
		{[]string{"--subnet", "10.0.0.0/24", plugin, `{"type":"../../bin/sh"}`}, `invalid --cni-plugin-json "{\"type\":\"../../bin/sh\"}": type "../../bin/sh" must be a plugin's name, without a path`},
		{[]string{"--subnet", "10.0.0.0/24", plugin, `{"type":"tuning","cniVersion":"1.0.0"}`},
			`invalid --cni-plugin-json "{\"type\":\"tuning\",\"cniVersion\":\"1.0.0\"}": "cniVersion" is filled in by the runtime: leave it out`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append(append([]string{"network", "create"}, tt.args...), "net")...)
			if res.Code != 1 || !strings.HasPrefix(res.Stderr, "Error: "+tt.want) {
				t.Errorf("exit %d, stderr %q\nwant exit 1, stderr starting %q", res.Code, res.Stderr, "Error: "+tt.want)
			}
			if calls := f.callNames(); len(calls) != 0 {
				t.Errorf("a bad flag made RPCs %v", calls)
			}
		})
	}
}

func TestNetworkCreateUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--subnet", "10.0.0.0/24"}, "Error: \"shoalctl network create\" requires exactly 1 argument(s) (NETWORK), got 0\n"},
		{[]string{"--subnet", "10.0.0.0/24", "a", "b"}, "Error: \"shoalctl network create\" requires exactly 1 argument(s) (NETWORK), got 2\n"},
		{[]string{"--subnet", "10.0.0.0/24", ""}, "Error: invalid NETWORK \"\": the name must not be empty\n"},
	} {
		f := newFakeCluster()
		res := shoalctl(t, serve(t, f), append([]string{"network", "create"}, tt.args...)...)
		if res.Code != 1 || !strings.HasPrefix(res.Stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, res.Code, res.Stderr, tt.want)
		}
		if calls := f.callNames(); len(calls) != 0 {
			t.Errorf("%v made RPCs %v", tt.args, calls)
		}
	}
}

func TestNetworkCreateRefusedByManager(t *testing.T) {
	f := newFakeNetworks()
	res := shoalctl(t, serve(t, f), "network", "create", "--subnet", "10.20.5.0/24", "side")
	res.Check(t, 1, "", "Error: create network side: subnet 10.20.5.0/24 overlaps subnet 10.20.0.0/16 of network front\n")
}

func TestNetworkList(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		modify func(f *fakeControl)
		want   string
	}{
		{
			name: "table",
			want: `NETWORK ID     NAME    DRIVER    SCOPE   SUBNETS                      VNI
backnet00000   back    overlay   swarm   10.30.0.0/24, fd00:30::/64   4098
frontnet0000   front   overlay   swarm   10.20.0.0/16                 4097
`,
		},
		{
			name:   "no VNI yet",
			modify: func(f *fakeControl) { f.networks = f.networks[:1]; f.networks[0].Vni = 0 },
			want: `NETWORK ID     NAME    DRIVER    SCOPE   SUBNETS        VNI
frontnet0000   front   overlay   swarm   10.20.0.0/16   -
`,
		},
		{
			name: "quiet",
			args: []string{"-q"},
			want: "backnet00000\nfrontnet0000\n",
		},
		{
			name:   "none",
			modify: func(f *fakeControl) { f.networks = nil },
			want:   "NETWORK ID   NAME   DRIVER   SCOPE   SUBNETS   VNI\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeNetworks()
			if tt.modify != nil {
				tt.modify(f)
			}
			res := shoalctl(t, serve(t, f), append([]string{"network", "ls"}, tt.args...)...)
			res.Check(t, 0, tt.want, "")
		})
	}
}

func TestNetworkListJSON(t *testing.T) {
	f := newFakeNetworks()
	res := shoalctl(t, serve(t, f), "network", "ls", "--format", "json")
	if res.Code != 0 {
		t.Fatalf("network ls --format json: exit %d, stderr %q", res.Code, res.Stderr)
	}
	checkNetworks(t, decodeNetworks(t, res.Stdout), backNetwork(), frontNetwork())

	res = shoalctl(t, serve(t, f), "network", "ls", "--format", "yaml")
	res.Check(t, 1, "", "Error: invalid --format \"yaml\": must be one of table, json\n")
}

func TestNetworkInspect(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		want       []*api.Network // JSON output: the networks, in order
		wantOut    []string       // pretty output: lines it contains
		wantStderr string
	}{
		{
			name: "by name and ID prefix, a JSON array by default",
			args: []string{"front", "backnet"},
			want: []*api.Network{frontNetwork(), backNetwork()},
		},
		{
			name:       "missing network: the others are printed, then the error",
			args:       []string{"nope", "back"},
			wantCode:   1,
			want:       []*api.Network{backNetwork()},
			wantStderr: "Error: get network nope: network \"nope\" not found\n",
		},
		{
			name: "pretty",
			args: []string{"--pretty", "front"},
			wantOut: []string{
				"ID: " + idFront,
				"Name: front",
				"Labels: team=edge",
				"Created at: 2025-03-01T12:00:00Z",
				"Driver: overlay",
				"Scope: swarm",
				"VNI: 4097",
				"Attachable: true",
				"Subnet 10.20.0.0/16:",
				"Gateway: 10.20.0.1",
				"IP range: 10.20.128.0/17",
				"Aux address: dns=10.20.0.3",
				"Aux address: router=10.20.0.2",
				"CNI plugins:",
				`bandwidth: {"type":"bandwidth","egressRate":1000000}`,
			},
		},
		{
			name:    "pretty, dual-stack with defaults",
			args:    []string{"--format", "pretty", "back"},
			wantOut: []string{"Subnet 10.30.0.0/24:", "Subnet fd00:30::/64:", "Gateway: -", "IP range: -", "Attachable: false"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := shoalctl(t, serve(t, newFakeNetworks()), append([]string{"network", "inspect"}, tt.args...)...)
			if res.Code != tt.wantCode || res.Stderr != tt.wantStderr {
				t.Fatalf("exit %d, stderr %q; want exit %d, stderr %q", res.Code, res.Stderr, tt.wantCode, tt.wantStderr)
			}
			if tt.want != nil {
				checkNetworks(t, decodeNetworks(t, res.Stdout), tt.want...)
			}
			checkHasLines(t, res.Stdout, tt.wantOut)
		})
	}
}

func TestNetworkRemove(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		users      map[string][]string
		wantCode   int
		wantStdout string
		wantStderr string
		wantLeft   []string
	}{
		{
			name:       "several, by name and ID prefix",
			args:       []string{"front", "backnet"},
			wantStdout: "front\nbacknet\n",
		},
		{
			name:       "in use: refused with its services; the others go on",
			args:       []string{"back", "front"},
			users:      map[string][]string{idBack: {"web", "api"}},
			wantCode:   1,
			wantStdout: "front\n",
			wantStderr: "Error: remove network back: network back is in use by services web, api\n",
			wantLeft:   []string{idBack},
		},
		{
			name:       "a missing network does not stop the others",
			args:       []string{"ghost", "front"},
			wantCode:   1,
			wantStdout: "front\n",
			wantStderr: "Error: remove network ghost: network \"ghost\" not found\n",
			wantLeft:   []string{idBack},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeNetworks()
			f.networkUsers = tt.users
			res := shoalctl(t, serve(t, f), append([]string{"network", "rm"}, tt.args...)...)
			res.Check(t, tt.wantCode, tt.wantStdout, tt.wantStderr)
			f.mu.Lock()
			defer f.mu.Unlock()
			var left []string
			for _, n := range f.networks {
				left = append(left, n.GetId())
			}
			if !slices.Equal(left, tt.wantLeft) {
				t.Errorf("networks left %v, want %v", left, tt.wantLeft)
			}
		})
	}
}

// decodeNetworks parses a JSON array of networks as printed by shoalctl.
func decodeNetworks(t *testing.T, out string) []*api.Network {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(out), &raws); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	networks := make([]*api.Network, 0, len(raws))
	for _, raw := range raws {
		n := &api.Network{}
		if err := protojson.Unmarshal(raw, n); err != nil {
			t.Fatalf("array element is not a Network: %v\n%s", err, raw)
		}
		networks = append(networks, n)
	}
	return networks
}

// checkNetworks fails t unless got is want, in order.
func checkNetworks(t *testing.T, got []*api.Network, want ...*api.Network) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d networks %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("network %d:\ngot  %v\nwant %v", i, got[i], want[i])
		}
	}
}
