package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestLoadConfig(t *testing.T) {
	const ipamOK = `"ipam":{"type":"shoal-ipam"}`
	tests := []struct {
		name        string
		stdin       string
		wantMTU     int
		wantHairpin bool
		wantMAC     string
		wantCode    uint
		wantErr     string
	}{
		{name: "defaults", stdin: `{"bridge":"shl0a1b2c3d4e",` + ipamOK + `}`, wantMTU: 1450, wantHairpin: true},
		{name: "everything set", stdin: `{"bridge":"br0","mtu":9000,"hairpinMode":false,"runtimeConfig":{"mac":"02:42:C6:12:00:05"},` + ipamOK + `}`,
			wantMTU: 9000, wantHairpin: false, wantMAC: "02:42:c6:12:00:05"},
		{name: "not JSON", stdin: `{"bridge":`, wantCode: types.ErrDecodingFailure, wantErr: "decode network configuration"},
		{name: "no bridge", stdin: `{` + ipamOK + `}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: "bridge is required"},
		{name: "bridge name too long", stdin: `{"bridge":"shl0a1b2c3d4e5f6",` + ipamOK + `}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: `bridge "shl0a1b2c3d4e5f6" is not a valid interface name`},
		{name: "bridge name with slash", stdin: `{"bridge":"a/b",` + ipamOK + `}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: `bridge "a/b" is not a valid interface name`},
		{name: "mtu too small", stdin: `{"bridge":"br0","mtu":60,` + ipamOK + `}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: "mtu 60 is out of range [68, 65535]"},
		{name: "no ipam", stdin: `{"bridge":"br0"}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: "ipam.type is required"},
		{name: "bad mac", stdin: `{"bridge":"br0","runtimeConfig":{"mac":"02:42"},` + ipamOK + `}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: `runtimeConfig.mac: "02:42" is not a MAC address`},
		{name: "multicast mac", stdin: `{"bridge":"br0","runtimeConfig":{"mac":"01:00:5e:00:00:01"},` + ipamOK + `}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: "is a multicast address"},
		{name: "long mac", stdin: `{"bridge":"br0","runtimeConfig":{"mac":"02:00:00:00:00:00:00:01"},` + ipamOK + `}`, wantCode: types.ErrInvalidNetworkConfig, wantErr: "is not a 6-byte Ethernet address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig([]byte(tt.stdin))
			if err == nil {
				_, err = c.runtimeMAC()
			}
			if tt.wantErr != "" {
				var cniErr *types.Error
				if !errors.As(err, &cniErr) || cniErr.Code != tt.wantCode || !strings.Contains(cniErr.Error(), tt.wantErr) {
					t.Fatalf("loadConfig() error = %v, want code %d containing %q", err, tt.wantCode, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig(): %v", err)
			}
			if c.MTU != tt.wantMTU || c.hairpin != tt.wantHairpin {
				t.Errorf("loadConfig() mtu %d hairpin %t, want %d %t", c.MTU, c.hairpin, tt.wantMTU, tt.wantHairpin)
			}
			mac, err := c.runtimeMAC()
			if err != nil {
				t.Fatalf("runtimeMAC(): %v", err)
			}
			if got := mac.String(); got != tt.wantMAC {
				t.Errorf("runtimeMAC() = %q, want %q", got, tt.wantMAC)
			}
		})
	}
}

func TestPrevResultRequired(t *testing.T) {
	c, err := loadConfig([]byte(`{"cniVersion":"1.1.0","name":"n","bridge":"br0","ipam":{"type":"shoal-ipam"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.prevResult(); err == nil || !strings.Contains(err.Error(), "prevResult is missing") {
		t.Fatalf("prevResult() error = %v, want prevResult is missing", err)
	}
}
