package main

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func TestUsageOf(t *testing.T) {
	slot := func(slot uint64, network, addr string) *api.IPBinding {
		return &api.IPBinding{ServiceName: "web", NetworkId: network, Slot: slot, Address: addr}
	}
	network := func(configs ...*api.IPAMConfig) *api.Network {
		return &api.Network{Id: "n", Spec: &api.NetworkSpec{Ipam: configs}}
	}
	tests := []struct {
		name          string
		network       *api.Network
		bindings      []*api.IPBinding
		wantUsed      int
		wantFree      uint64
		wantSubnets   []uint64 // each subnet's used, free
		wantConflicts []string
	}{
		{
			name:        "a /24: 254 assignable, less the default gateway",
			network:     network(&api.IPAMConfig{Subnet: "10.0.0.0/24"}),
			wantFree:    253,
			wantSubnets: []uint64{0, 253},
		},
		{
			name: "a dynamic range: pins outside it do not count against it",
			network: network(&api.IPAMConfig{Subnet: "10.0.0.0/24", IpRange: "10.0.0.100-10.0.0.109",
				AuxAddresses: map[string]string{"a": "10.0.0.105", "b": "10.0.0.3"}}),
			bindings:    []*api.IPBinding{slot(1, "n", "10.0.0.100/24"), slot(2, "n", "10.0.0.3/24"), slot(3, "other", "10.0.0.101/24")},
			wantUsed:    2,
			wantFree:    8, // 10, less the aux address .105 and the binding .100
			wantSubnets: []uint64{2, 8},
		},
		{
			name:    "a pin on an aux address costs the range nothing more",
			network: network(&api.IPAMConfig{Subnet: "10.0.0.0/29", AuxAddresses: map[string]string{"a": "10.0.0.2-10.0.0.3"}}),
			// .1 gateway, .2-.3 reserved: .4-.6 free
			bindings:    []*api.IPBinding{slot(1, "n", "10.0.0.2/29"), slot(2, "n", "10.0.0.4")},
			wantUsed:    2,
			wantFree:    2,
			wantSubnets: []uint64{2, 2},
		},
		{
			name:        "two subnets; IPv6 saturates",
			network:     network(&api.IPAMConfig{Subnet: "10.0.0.0/29"}, &api.IPAMConfig{Subnet: "fd00::/64"}),
			bindings:    []*api.IPBinding{slot(1, "n", "fd00::5/64")},
			wantUsed:    1,
			wantFree:    math.MaxUint64,
			wantSubnets: []uint64{0, 5, 1, 1<<64 - 3},
		},
		{
			name:        "conflicts: the gateway, twice the same address, outside every subnet, unparsable",
			network:     network(&api.IPAMConfig{Subnet: "10.0.0.0/29"}),
			bindings:    []*api.IPBinding{slot(1, "n", "10.0.0.1/29"), slot(2, "n", "10.0.0.4/29"), slot(3, "n", "10.0.0.4/29"), slot(4, "n", "10.9.0.1/24"), slot(5, "n", "x")},
			wantUsed:    5,
			wantFree:    4, // .2-.6, less .4
			wantSubnets: []uint64{3, 4},
			wantConflicts: []string{
				"web slot 1: ipam: address 10.0.0.1: not assignable",
				"web slot 3: ipam: address 10.0.0.4: already in use",
				"web slot 4: 10.9.0.1 is in no subnet of the network",
				`web slot 5: address "x"`,
			},
		},
		{
			name:          "a subnet no pool can be made of counts nothing",
			network:       network(&api.IPAMConfig{Subnet: "10.0.0.0/32"}, &api.IPAMConfig{Subnet: "10.1.0.0/30"}),
			bindings:      []*api.IPBinding{slot(1, "n", "10.0.0.0/32")},
			wantUsed:      1,
			wantFree:      1,
			wantSubnets:   []uint64{0, 0, 0, 1},
			wantConflicts: []string{"web slot 1: 10.0.0.0 is in no subnet of the network"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := usageOf(tt.network, tt.bindings)
			if u.Used != tt.wantUsed || u.Free != tt.wantFree {
				t.Errorf("used %d, free %d; want %d, %d", u.Used, u.Free, tt.wantUsed, tt.wantFree)
			}
			var subnets []uint64
			for _, s := range u.Subnets {
				subnets = append(subnets, s.Used, s.Free)
			}
			if !slices.Equal(subnets, tt.wantSubnets) {
				t.Errorf("subnets' used, free %v, want %v", subnets, tt.wantSubnets)
			}
			if len(u.Conflicts) != len(tt.wantConflicts) {
				t.Fatalf("conflicts %q, want %q", u.Conflicts, tt.wantConflicts)
			}
			for i, c := range u.Conflicts {
				if !strings.HasPrefix(c, tt.wantConflicts[i]) {
					t.Errorf("conflict %q, want one starting %q", c, tt.wantConflicts[i])
				}
			}
		})
	}
}

func TestNetworkRows(t *testing.T) {
	bindings := fixtureBindings()
	usages := []networkUsage{usageOf(backNetwork(), bindings), usageOf(frontNetwork(), bindings)}
	broken := &api.Network{Id: "brokennet000000000", Spec: &api.NetworkSpec{
		Annotations: &api.Annotations{Name: "broken"}, Driver: "overlay", Ipam: []*api.IPAMConfig{{Subnet: "10.40.0.0/32"}}}}
	usages = append(usages, usageOf(broken, nil))
	var out strings.Builder
	if err := cli.PrintTable(&out, networkHeader, networkRows(usages)); err != nil {
		t.Fatal(err)
	}
	want := `NAME     ID             DRIVER    VNI    SUBNETS                      USED   FREE
back     backnet00000   overlay   4098   10.30.0.0/24, fd00:30::/64   1      >=2^64
front    frontnet0000   overlay   4097   10.20.0.0/24                 4      119
broken   brokennet000   overlay   -      10.40.0.0/32                 0      -
`
	if out.String() != want {
		t.Errorf("table\n%s\nwant\n%s", out.String(), want)
	}
}

func TestNetworkList(t *testing.T) {
	res := netctl(t, serve(t, newFake()), "network", "ls")
	res.Check(t, 0, `NAME    ID             DRIVER    VNI    SUBNETS                      USED   FREE
back    backnet00000   overlay   4098   10.30.0.0/24, fd00:30::/64   1      >=2^64
front   frontnet0000   overlay   4097   10.20.0.0/24                 4      119
`, "")

	res = netctl(t, serve(t, newFake()), "network", "ls", "--format", "json")
	var got []struct {
		Network struct {
			ID   string `json:"id"`
			Spec struct {
				Annotations struct{ Name string } `json:"annotations"`
			} `json:"spec"`
		} `json:"network"`
		Used    int    `json:"used"`
		Free    uint64 `json:"free"`
		Subnets []subnetUsage
	}
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil || res.Code != 0 {
		t.Fatalf("exit %d, %v:\n%s", res.Code, err, res.Stdout)
	}
	if len(got) != 2 || got[1].Network.ID != idFront || got[1].Network.Spec.Annotations.Name != "front" ||
		got[1].Used != 4 || got[1].Free != 119 || got[0].Free != math.MaxUint64 ||
		len(got[0].Subnets) != 2 || got[0].Subnets[1].Free != 1<<64-2 {
		t.Errorf("JSON %+v\n%s", got, res.Stdout)
	}
}

func TestNetworkInspect(t *testing.T) {
	res := netctl(t, serve(t, newFake()), "network", "inspect", "front")
	want := `ID:            frontnet00000000000000001
Name:          front
Driver:        overlay
VNI:           4097
Attachable:    false
Label:         team=edge
Used:          4
Free:          119
Subnet 10.20.0.0/24:
  Gateway:     10.20.0.1
  IP range:    10.20.0.128/25
  Aux address: pool=10.20.0.250-10.20.0.254
  Aux address: router=10.20.0.2
  Used:        4
  Free:        119
  Cooling:     1
  Cursor:      10.20.0.131
`
	res.Check(t, 0, want, "")

	res = netctl(t, serve(t, newFake()), "network", "inspect", "back", "--format", "json")
	var got networkUsage
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil || res.Code != 0 {
		t.Fatalf("exit %d, %v:\n%s", res.Code, err, res.Stdout)
	}
	wantSubnets := []subnetUsage{
		{Subnet: "10.30.0.0/24", Gateway: "10.30.0.1", Used: 1, Free: 252},
		{Subnet: "fd00:30::/64", Gateway: "fd00:30::1", Free: 1<<64 - 2},
	}
	if got.Used != 1 || len(got.Subnets) != 2 || !subnetsEqual(got.Subnets, wantSubnets) ||
		!strings.Contains(string(got.Network), `"vni": 4098`) {
		t.Errorf("JSON %+v, want subnets %+v\n%s", got, wantSubnets, res.Stdout)
	}

	res = netctl(t, serve(t, newFake()), "network", "inspect", "nope")
	res.Check(t, 1, "", "Error: get network nope: network \"nope\" not found\n")
}

func subnetsEqual(a, b []subnetUsage) bool {
	return slices.EqualFunc(a, b, func(x, y subnetUsage) bool {
		return x.Subnet == y.Subnet && x.Gateway == y.Gateway && x.Used == y.Used && x.Free == y.Free &&
			x.Cooling == y.Cooling && x.Cursor == y.Cursor && x.Error == y.Error
	})
}

func TestAllocatorState(t *testing.T) {
	f := newFake()
	f.state = allocatorState()
	sock := serve(t, f)
	res := netctl(t, sock, "allocator", "state")
	res.Check(t, 0, `Leader:                node-1 (node1id000000000000000001)
State version:         120
State size:            26 bytes
Rebuilt at version:    100
Rebuild duration:      12ms
Changed since rebuild: yes
Inconsistencies:       1
  1:                   task webtask9: address 10.20.0.9/24 disagrees with its binding's 10.20.0.10/24: repaired
`, "")

	res = netctl(t, sock, "allocator", "state", "--format", "json")
	res.Check(t, 0, `{"pools":{},"bindings":[]}`+"\n", "")

	res = netctl(t, serve(t, newFake()), "allocator", "state")
	res.Check(t, 1, "", "Error: get allocator state: not the leader: ask mgr-1\n")
}

func TestUsageErrors(t *testing.T) {
	tests := []struct{ args, want string }{
		{"ip ls --format yaml", "Error: invalid --format \"yaml\": must be one of table, json\n"},
		{"network inspect front --format table", "Error: invalid --format \"table\": must be one of pretty, json\n"},
		{"ip history web", "Error: \"netctl ip history\" requires exactly 2 argument(s) (SERVICE SLOT), got 1\nSee 'netctl ip history --help'.\n"},
		{"ip ls --all", "Error: unknown flag: --all\nSee 'netctl ip ls --help'.\n"},
		{"--timeout 0s ip ls", "Error: invalid --timeout 0s: must be positive\n"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			f := newFake()
			res := netctl(t, serve(t, f), strings.Fields(tt.args)...)
			res.Check(t, 1, "", tt.want)
			if calls := f.callNames(); len(calls) != 0 {
				t.Errorf("a usage error made RPCs %v", calls)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	sock := t.TempDir() + "/missing.sock"
	res := netctl(t, sock, "network", "ls")
	res.Check(t, 1, "", "Error: cannot reach the shoal manager at "+sock+
		": connect: no such file or directory (is shoald running? set --socket or SHOAL_SOCKET)\n")
}
