package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func TestRequestedAddresses(t *testing.T) {
	tests := []struct {
		name    string
		stdin   string
		cniArgs string
		want    []string
	}{
		{name: "runtimeConfig wins", stdin: `{"runtimeConfig":{"ips":["198.18.0.5/24"]},"args":{"cni":{"ips":["198.18.0.6/24"]}}}`, cniArgs: "IP=198.18.0.7", want: []string{"198.18.0.5/24"}},
		{name: "args.cni.ips", stdin: `{"args":{"cni":{"ips":["198.18.0.6/24"]}}}`, cniArgs: "IP=198.18.0.7", want: []string{"198.18.0.6/24"}},
		{name: "CNI_ARGS among other keys", stdin: `{}`, cniArgs: "K8S_POD_NAME=web;IP=198.18.0.7/24, fd00::7/64;X=1", want: []string{"198.18.0.7/24", "fd00::7/64"}},
		{name: "nothing", stdin: `{}`, cniArgs: "IgnoreUnknown=1", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n netConf
			if err := json.Unmarshal([]byte(tt.stdin), &n); err != nil {
				t.Fatal(err)
			}
			if got := requestedAddresses(&n, tt.cniArgs); !slices.Equal(got, tt.want) {
				t.Fatalf("requestedAddresses() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAssignSubnets(t *testing.T) {
	subnets, err := parseSubnets([]subnetConf{
		{Subnet: "198.18.0.0/24", Gateway: "198.18.0.1"},
		{Subnet: "198.18.8.0/22", Gateway: "198.18.8.1"},
		{Subnet: "fd00:5::/64"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		requested []string
		want      []string // "address gateway"
		wantErr   string
	}{
		{name: "one per subnet", requested: []string{"198.18.0.5/24", "198.18.9.200", "fd00:5::5/64"},
			want: []string{"198.18.0.5/24 198.18.0.1", "198.18.9.200/22 198.18.8.1", "fd00:5::5/64 fd00:5::1"}},
		{name: "none", wantErr: errNoAddress},
		{name: "outside", requested: []string{"198.18.1.5/24"}, wantErr: "address 198.18.1.5 is outside the network's subnets (198.18.0.0/24, 198.18.8.0/22, fd00:5::/64)"},
		{name: "wrong prefix", requested: []string{"198.18.0.5/16"}, wantErr: "address 198.18.0.5/16 has prefix length /16 but its subnet 198.18.0.0/24 is /24"},
		{name: "network address", requested: []string{"198.18.0.0/24"}, wantErr: "address 198.18.0.0 is the subnet's network address (subnet 198.18.0.0/24)"},
		{name: "broadcast", requested: []string{"198.18.11.255"}, wantErr: "address 198.18.11.255 is the subnet's broadcast address (subnet 198.18.8.0/22)"},
		{name: "gateway", requested: []string{"198.18.0.1/24"}, wantErr: "address 198.18.0.1 is the gateway of subnet 198.18.0.0/24"},
		{name: "twice", requested: []string{"198.18.0.5/24", "198.18.0.5"}, wantErr: "address 198.18.0.5 is given twice"},
		{name: "garbage", requested: []string{"web.3"}, wantErr: `address "web.3" is neither an IP address nor in CIDR notation`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ips, err := assignSubnets(tt.requested, subnets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("assignSubnets() error = %v, want one containing %q", err, tt.wantErr)
				}
				if cniErr, ok := err.(*types.Error); !ok || cniErr.Code != types.ErrInvalidNetworkConfig {
					t.Fatalf("assignSubnets() error = %#v, want a CNI error with code %d", err, types.ErrInvalidNetworkConfig)
				}
				return
			}
			if err != nil {
				t.Fatalf("assignSubnets(): %v", err)
			}
			var got []string
			for _, ip := range ips {
				got = append(got, ip.Address.String()+" "+ip.Gateway.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("assignSubnets() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoutesFor(t *testing.T) {
	var configured []*types.Route
	if err := json.Unmarshal([]byte(`[{"dst":"0.0.0.0/0"},{"dst":"203.0.113.0/24","gw":"198.18.0.254"},{"dst":"::/0"}]`), &configured); err != nil {
		t.Fatal(err)
	}
	subnets, err := parseSubnets([]subnetConf{{Subnet: "198.18.0.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	ips, err := assignSubnets([]string{"198.18.0.5"}, subnets)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range routesFor(configured, ips) {
		got = append(got, r.Dst.String()+" via "+r.GW.String())
	}
	// The IPv6 default route is left out: there is no IPv6 address.
	want := []string{"0.0.0.0/0 via 198.18.0.1", "203.0.113.0/24 via 198.18.0.254"}
	if !slices.Equal(got, want) {
		t.Fatalf("routesFor() = %q, want %q", got, want)
	}
	if configured[0].GW != nil {
		t.Fatal("routesFor() changed the configured route")
	}
}

func TestFindIP(t *testing.T) {
	subnets, err := parseSubnets([]subnetConf{{Subnet: "198.18.0.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := assignSubnets([]string{"198.18.0.5"}, subnets)
	if err != nil {
		t.Fatal(err)
	}
	other, err := assignSubnets([]string{"198.18.0.6"}, subnets)
	if err != nil {
		t.Fatal(err)
	}
	if err := findIP(want, want[0]); err != nil {
		t.Fatalf("findIP() on the same address: %v", err)
	}
	err = findIP(other, want[0])
	if err == nil || !strings.Contains(err.Error(), "address 198.18.0.5/24 is not in the previous result (which has 198.18.0.6/24)") {
		t.Fatalf("findIP() error = %v", err)
	}
	wrongGW := []*current.IPConfig{{Address: want[0].Address, Gateway: other[0].Address.IP}}
	if err := findIP(wrongGW, want[0]); err == nil || !strings.Contains(err.Error(), "gateway 198.18.0.6") {
		t.Fatalf("findIP() with another gateway: error = %v", err)
	}
}
