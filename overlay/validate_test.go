package overlay

// This file tests that bad input is refused with an error naming the field, before anything
// changes.

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestNewRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no local VTEP", Config{}, "LocalVTEP"},
		{"IPv6 local VTEP", Config{LocalVTEP: netip.MustParseAddr("2001:db8::1")}, "LocalVTEP"},
		{"unspecified local VTEP", Config{LocalVTEP: netip.IPv4Unspecified()}, "LocalVTEP"},
		{"loopback local VTEP", Config{LocalVTEP: netip.MustParseAddr("127.0.0.1")}, "LocalVTEP"},
		{"negative port", Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Port: -1}, "Port"},
		{"port too large", Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Port: 65536}, "Port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			checkFieldError(t, err, tc.field)
		})
	}
}

func TestSyncRefusesBadInput(t *testing.T) {
	bed := newTestbed(t, 2)
	node := bed.nodes[0]
	remote := bed.nodes[1].vtep
	good := func() Desired {
		return Desired{
			Network:   testNetwork,
			Endpoints: []Endpoint{{IP: taskIP(80), MAC: macOfIP(taskIP(80)), VTEP: remote}},
			Peers:     []netip.Addr{remote},
		}
	}
	cases := []struct {
		name   string
		mutate func(*Desired)
		field  string
	}{
		{"no network ID", func(d *Desired) { d.Network.ID = "" }, "Network.ID"},
		{"network ID with a slash", func(d *Desired) { d.Network.ID = "ab/cd" }, "Network.ID"},
		{"VNI 0", func(d *Desired) { d.Network.VNI = 0 }, "Network.VNI"},
		{"VNI 2^24", func(d *Desired) { d.Network.VNI = 1 << 24 }, "Network.VNI"},
		{"no bridge", func(d *Desired) { d.Network.Bridge = "" }, "Network.Bridge"},
		{"bridge name too long", func(d *Desired) { d.Network.Bridge = "shl0123456789abcdef" }, "Network.Bridge"},
		{"MTU 67", func(d *Desired) { d.Network.MTU = 67 }, "Network.MTU"},
		{"MTU 0", func(d *Desired) { d.Network.MTU = 0 }, "Network.MTU"},
		{"no endpoint IP", func(d *Desired) { d.Endpoints[0].IP = netip.Addr{} }, "Endpoints[0].IP"},
		{"IPv6 endpoint", func(d *Desired) { d.Endpoints[0].IP = netip.MustParseAddr("2001:db8::7") }, "Endpoints[0].IP"},
		{"multicast endpoint IP", func(d *Desired) { d.Endpoints[0].IP = netip.MustParseAddr("224.0.0.7") }, "Endpoints[0].IP"},
		{"5-byte MAC", func(d *Desired) { d.Endpoints[0].MAC = d.Endpoints[0].MAC[:5] }, "Endpoints[0].MAC"},
		{"no MAC", func(d *Desired) { d.Endpoints[0].MAC = nil }, "Endpoints[0].MAC"},
		{"multicast MAC", func(d *Desired) { d.Endpoints[0].MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} }, "Endpoints[0].MAC"},
		{"all-zeros MAC", func(d *Desired) { d.Endpoints[0].MAC = make(net.HardwareAddr, 6) }, "Endpoints[0].MAC"},
		{"no VTEP", func(d *Desired) { d.Endpoints[0].VTEP = netip.Addr{} }, "Endpoints[0].VTEP"},
		{"IPv6 VTEP", func(d *Desired) { d.Endpoints[0].VTEP = netip.MustParseAddr("2001:db8::2") }, "Endpoints[0].VTEP"},
		{"IP twice", func(d *Desired) {
			d.Endpoints = append(d.Endpoints, Endpoint{IP: taskIP(80), MAC: macOfIP(taskIP(81)), VTEP: remote})
		}, "Endpoints[1].IP"},
		{"MAC at two VTEPs", func(d *Desired) {
			d.Endpoints = append(d.Endpoints, Endpoint{IP: taskIP(81), MAC: macOfIP(taskIP(80)), VTEP: unusedVTEP})
		}, "Endpoints[1].MAC"},
		{"IPv6 peer", func(d *Desired) { d.Peers = append(d.Peers, netip.MustParseAddr("2001:db8::3")) }, "Peers[1]"},
		{"unspecified peer", func(d *Desired) { d.Peers = append(d.Peers, netip.IPv4Unspecified()) }, "Peers[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := good()
			tc.mutate(&d)
			var ch Changes
			var syncErr, inspectErr error
			inNetns(t, node.ns, func() error {
				ch, syncErr = node.mgr.Sync(d)
				_, inspectErr = node.mgr.Inspect(d)
				return nil
			})
			checkFieldError(t, syncErr, tc.field)
			checkFieldError(t, inspectErr, tc.field)
			if ch.Changed() {
				t.Errorf("refused Sync changed %+v", ch)
			}
		})
	}
	if node.hasDevice(t, DeviceName(testNetworkID)) {
		t.Errorf("refused Syncs created device %s", DeviceName(testNetworkID))
	}
	// The good input is accepted: the cases fail for the reason they name.
	if ch := node.sync(good()); !ch.DeviceCreated {
		t.Errorf("Sync with the good input changed %+v, want the device created", ch)
	}
}

func TestRemoveRefusesBadID(t *testing.T) {
	m, err := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	checkFieldError(t, m.Remove(""), "Network.ID")
	checkFieldError(t, m.Remove("a b"), "Network.ID")
}

// checkFieldError fails the test unless err is a *FieldError naming field that matches
// ErrInvalid.
func checkFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe *FieldError
	switch {
	case !errors.As(err, &fe):
		t.Errorf("error %v, want a *FieldError naming %s", err, field)
	case fe.Field != field:
		t.Errorf("error names %s (%v), want %s", fe.Field, err, field)
	case !errors.Is(err, ErrInvalid):
		t.Errorf("error %v does not match ErrInvalid", err)
	}
}
