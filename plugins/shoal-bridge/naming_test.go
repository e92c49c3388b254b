package main

import (
	"net"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

func TestHostVethName(t *testing.T) {
	a := hostVethName("c0ffee", "eth0")
	if a != hostVethName("c0ffee", "eth0") {
		t.Fatal("hostVethName is not deterministic")
	}
	if len(a) != 13 || !isHostVethName(a) {
		t.Fatalf("hostVethName() = %q, want shv and 10 hex digits", a)
	}
	// The separator keeps ("c0ffee", "eth0") and ("c0ffe", "eeth0") apart.
	for _, other := range []string{hostVethName("c0ffee", "eth1"), hostVethName("c0ffe", "eeth0"), hostVethName("c0ffef", "eth0")} {
		if other == a {
			t.Errorf("two attachments share the host veth name %q", a)
		}
	}
}

func TestIsHostVethName(t *testing.T) {
	tests := map[string]bool{
		"shv0123456789":  true,
		"shvabcdefabcd":  true,
		"shv012345678":   false, // short
		"shv0123456789a": false,
		"shvzz23456789":  false,
		"veth012345678":  false,
		"vxlan0":         false,
	}
	for name, want := range tests {
		if got := isHostVethName(name); got != want {
			t.Errorf("isHostVethName(%q) = %t, want %t", name, got, want)
		}
	}
}

func TestMACFromIPv4(t *testing.T) {
	ipc := func(cidr string) *current.IPConfig {
		ip, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return &current.IPConfig{Address: *n}
	}
	tests := []struct {
		name string
		ips  []*current.IPConfig
		want string
	}{
		{name: "ipv4", ips: []*current.IPConfig{ipc("198.18.0.5/24")}, want: "02:42:c6:12:00:05"},
		{name: "first ipv4 after ipv6", ips: []*current.IPConfig{ipc("fd00::5/64"), ipc("10.20.0.13/16"), ipc("10.20.0.14/16")}, want: "02:42:0a:14:00:0d"},
		{name: "ipv6 only", ips: []*current.IPConfig{ipc("fd00::5/64")}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := macFromIPv4(tt.ips).String(); got != tt.want {
				t.Errorf("macFromIPv4() = %q, want %q", got, tt.want)
			}
		})
	}
}
