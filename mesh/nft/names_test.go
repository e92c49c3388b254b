package nft

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/shoal/shoal/mesh"
)

func TestChainNamesRoundTrip(t *testing.T) {
	a := netip.MustParseAddr("10.20.0.2")
	if got, ok := parseVIPChain(vipChain(a)); !ok || got != a {
		t.Errorf("parseVIPChain(%q) = %s, %t", vipChain(a), got, ok)
	}
	for _, k := range []portKey{{mesh.TCP, 8080}, {mesh.UDP, 53}, {mesh.TCP, 65535}} {
		if got, ok := parsePortChain(portChain(k)); !ok || got != k {
			t.Errorf("parsePortChain(%q) = %v, %t", portChain(k), got, ok)
		}
	}
	for _, prefix := range []string{pickVIPPrefix, pickPortPrefix} {
		name := pickChain(prefix, 12)
		if p, n, ok := parsePickChain(name); !ok || p != prefix || n != 12 {
			t.Errorf("parsePickChain(%q) = %q, %d, %t", name, p, n, ok)
		}
	}
}

func TestChainNamesRefuseOthers(t *testing.T) {
	for _, name := range []string{"vip-", "vip-10.0.0", "vip-fd00::1", "vip-010.0.0.1", "vips", "prerouting"} {
		if _, ok := parseVIPChain(name); ok {
			t.Errorf("parseVIPChain(%q) accepted it", name)
		}
	}
	for _, name := range []string{"port-tcp", "port-sctp-80", "port-tcp-0", "port-tcp-65536", "port-tcp-080", "port-udp-x"} {
		if _, ok := parsePortChain(name); ok {
			t.Errorf("parsePortChain(%q) accepted it", name)
		}
	}
	for _, name := range []string{"pick-vip-0", "pick-vip-03", "pick-vip-", "pick-port--1", "pick-x-3"} {
		if _, _, ok := parsePickChain(name); ok {
			t.Errorf("parsePickChain(%q) accepted it", name)
		}
	}
}

func TestElementEncodingsRoundTrip(t *testing.T) {
	k := portKey{mesh.UDP, 5353}
	key := portKeyBytes(k)
	if want := []byte{17, 0, 0, 0, 0x14, 0xe9, 0, 0}; !bytes.Equal(key, want) {
		t.Errorf("portKeyBytes = %x, want %x", key, want)
	}
	if got, err := parsePortKey(key); err != nil || got != k {
		t.Errorf("parsePortKey = %v, %v", got, err)
	}
	prefix, slot, err := parseSlotKey(slotBytes(key, 7), len(key))
	if err != nil || slot != 7 || !bytes.Equal(prefix, key) {
		t.Errorf("parseSlotKey = %x, %d, %v", prefix, slot, err)
	}
	be := mesh.Backend{Addr: netip.MustParseAddr("198.18.0.9"), Port: 80}
	if got, err := parseBackend(backendBytes(be)); err != nil || got != be {
		t.Errorf("parseBackend = %v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, 5)} {
		if _, err := parseAddr(bad); err == nil {
			t.Errorf("parseAddr(%x) accepted it", bad)
		}
		if _, err := parseBackend(bad); err == nil {
			t.Errorf("parseBackend(%x) accepted it", bad)
		}
	}
	if _, err := parsePortKey([]byte{47, 0, 0, 0, 0, 80, 0, 0}); err == nil {
		t.Error("parsePortKey accepted protocol 47")
	}
}

func TestCommentsRoundTrip(t *testing.T) {
	c := labels{"service": "svc1", "name": "web", "network": ""}.comment("vip", "service", "name", "network")
	if c != "shoal vip service=svc1 name=web network=" {
		t.Errorf("comment = %q", c)
	}
	kind, l, ok := parseComment(c)
	if !ok || kind != "vip" || l["service"] != "svc1" || l["name"] != "web" || l["network"] != "" {
		t.Errorf("parseComment(%q) = %q, %v, %t", c, kind, l, ok)
	}
	for _, bad := range []string{"", "shoal", "other vip service=x", "shoal vip service"} {
		if _, _, ok := parseComment(bad); ok {
			t.Errorf("parseComment(%q) accepted it", bad)
		}
	}
}
