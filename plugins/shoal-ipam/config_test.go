package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseSubnets(t *testing.T) {
	tests := []struct {
		name    string
		subnets []subnetConf
		wantGWs []string
		wantErr string
	}{
		{name: "explicit gateway", subnets: []subnetConf{{Subnet: "198.18.0.0/24", Gateway: "198.18.0.254"}}, wantGWs: []string{"198.18.0.254"}},
		{name: "default gateway is the first host", subnets: []subnetConf{{Subnet: "198.18.0.0/24"}}, wantGWs: []string{"198.18.0.1"}},
		{name: "ipv6", subnets: []subnetConf{{Subnet: "fd00:5::/64"}}, wantGWs: []string{"fd00:5::1"}},
		{name: "two subnets", subnets: []subnetConf{{Subnet: "198.18.0.0/24"}, {Subnet: "198.18.1.0/24", Gateway: "198.18.1.9"}}, wantGWs: []string{"198.18.0.1", "198.18.1.9"}},
		{name: "none", wantErr: "ipam.subnets is empty"},
		{name: "not CIDR", subnets: []subnetConf{{Subnet: "198.18.0.0"}}, wantErr: `ipam.subnets[0]: subnet "198.18.0.0" is not in CIDR notation`},
		{name: "host bits", subnets: []subnetConf{{Subnet: "198.18.0.5/24"}}, wantErr: "subnet 198.18.0.5/24 has host bits set (the network is 198.18.0.0/24)"},
		{name: "too small", subnets: []subnetConf{{Subnet: "198.18.0.4/31"}}, wantErr: "too small"},
		{name: "gateway outside", subnets: []subnetConf{{Subnet: "198.18.0.0/24", Gateway: "198.18.1.1"}}, wantErr: "gateway 198.18.1.1 of subnet 198.18.0.0/24 is outside the subnet"},
		{name: "gateway is broadcast", subnets: []subnetConf{{Subnet: "198.18.0.0/24", Gateway: "198.18.0.255"}}, wantErr: "is the subnet's broadcast address"},
		{name: "gateway not an address", subnets: []subnetConf{{Subnet: "198.18.0.0/24", Gateway: "gw"}}, wantErr: `gateway "gw" of subnet 198.18.0.0/24 is not an IP address`},
		{name: "overlap", subnets: []subnetConf{{Subnet: "198.18.0.0/16"}, {Subnet: "198.18.4.0/24"}}, wantErr: "ipam.subnets[1]: subnet 198.18.4.0/24 overlaps subnet 198.18.0.0/16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSubnets(tt.subnets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSubnets() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSubnets(): %v", err)
			}
			if len(got) != len(tt.wantGWs) {
				t.Fatalf("parseSubnets() gave %d subnets, want %d", len(got), len(tt.wantGWs))
			}
			for i, s := range got {
				if s.Gateway.String() != tt.wantGWs[i] {
					t.Errorf("subnet %s gateway = %s, want %s", s.Prefix, s.Gateway, tt.wantGWs[i])
				}
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		wantCode uint
		wantErr  string
	}{
		{name: "not JSON", stdin: `{`, wantCode: types.ErrDecodingFailure, wantErr: "decode network configuration"},
		{name: "no ipam", stdin: `{"cniVersion":"1.1.0","name":"n"}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: `no "ipam" section`},
		{name: "route without dst", stdin: `{"cniVersion":"1.1.0","name":"n","ipam":{"type":"shoal-ipam","subnets":[{"subnet":"198.18.0.0/24"}],"routes":[{"gw":"198.18.0.1"}]}}`,
			wantCode: types.ErrInvalidNetworkConfig, wantErr: "ipam.routes[0]: dst is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig([]byte(tt.stdin))
			var cniErr *types.Error
			if !errors.As(err, &cniErr) {
				t.Fatalf("loadConfig() error = %v, want a CNI error", err)
			}
			if cniErr.Code != tt.wantCode || !strings.Contains(cniErr.Error(), tt.wantErr) {
				t.Fatalf("loadConfig() error = code %d %q, want code %d containing %q", cniErr.Code, cniErr.Error(), tt.wantCode, tt.wantErr)
			}
		})
	}
}
