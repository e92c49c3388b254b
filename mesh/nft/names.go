package nft

// This file owns the names of the table's objects and the encoding of set element keys and
// data: what a VIP's or a port's chain is called, and how an address, a (protocol, port) pair
// or a backend slot is laid out in the kernel's registers. Chain names are derived from the VIP
// or the port alone, so they stay the same across Syncs and agent restarts.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/shoal/shoal/mesh"
	"golang.org/x/sys/unix"
)

// The base chains (hooked into netfilter) and the sets of the table.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainInput       = "input"

	setVIPs         = "vips"          // VIP → goto its chain
	setVIPAddrs     = "vip-addrs"     // every VIP, for the input chain's reject
	setVIPBackends  = "vip-backends"  // VIP . slot → backend address
	setPorts        = "ports"         // protocol . published port → goto its chain
	setPortBackends = "port-backends" // protocol . published port . slot → backend address . port
	setHairpin      = "hairpin"       // backend address . the same address, for every VIP backend

	vipChainPrefix  = "vip-"
	portChainPrefix = "port-"
	pickVIPPrefix   = "pick-vip-"  // + backend count: the chain that picks among n VIP backends
	pickPortPrefix  = "pick-port-" // + backend count: the same for published ports
)

// portKey identifies a published port.
type portKey struct {
	proto mesh.Protocol
	port  uint16
}

func (k portKey) String() string { return k.proto.String() + "/" + strconv.Itoa(int(k.port)) }

func keyOf(p mesh.Port) portKey { return portKey{proto: p.Protocol, port: p.Published} }

// keyFrom is the portKey of a mesh.PortKey.
func keyFrom(k mesh.PortKey) portKey { return portKey{proto: k.Protocol, port: k.Published} }

// meshKey is the mesh.PortKey of k.
func (k portKey) meshKey() mesh.PortKey { return mesh.PortKey{Protocol: k.proto, Published: k.port} }

// vipChain is the chain of VIP a: "vip-10.20.0.2".
func vipChain(a netip.Addr) string { return vipChainPrefix + a.String() }

// portChain is the chain of a published port: "port-tcp-8080".
func portChain(k portKey) string {
	return portChainPrefix + k.proto.String() + "-" + strconv.Itoa(int(k.port))
}

// pickChain is the chain that picks one of n backends for a VIP ("pick-vip-3") or a port.
func pickChain(prefix string, n int) string { return prefix + strconv.Itoa(n) }

// parsePickChain returns the backend count of a chain named by pickChain.
func parsePickChain(name string) (prefix string, n int, ok bool) {
	for _, prefix := range []string{pickVIPPrefix, pickPortPrefix} {
		rest, found := strings.CutPrefix(name, prefix)
		if !found {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || pickChain(prefix, n) != name {
			return "", 0, false
		}
		return prefix, n, true
	}
	return "", 0, false
}

// parseVIPChain returns the VIP of a chain named by vipChain.
func parseVIPChain(name string) (netip.Addr, bool) {
	rest, ok := strings.CutPrefix(name, vipChainPrefix)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(rest)
	if err != nil || !a.Is4() || vipChain(a) != name {
		return netip.Addr{}, false
	}
	return a, true
}

// parsePortChain returns the port of a chain named by portChain.
func parsePortChain(name string) (portKey, bool) {
	rest, ok := strings.CutPrefix(name, portChainPrefix)
	if !ok {
		return portKey{}, false
	}
	protoText, portText, ok := strings.Cut(rest, "-")
	if !ok {
		return portKey{}, false
	}
	proto, err := mesh.ParseProtocol(protoText)
	if err != nil {
		return portKey{}, false
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return portKey{}, false
	}
	k := portKey{proto: proto, port: uint16(port)}
	if portChain(k) != name {
		return portKey{}, false
	}
	return k, true
}

// ipProto is the IP protocol number of p.
func ipProto(p mesh.Protocol) byte {
	if p == mesh.UDP {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

func protoOf(n byte) (mesh.Protocol, bool) {
	switch n {
	case unix.IPPROTO_TCP:
		return mesh.TCP, true
	case unix.IPPROTO_UDP:
		return mesh.UDP, true
	}
	return 0, false
}

// Element layouts. In a concatenation every field starts on a 4-byte register boundary; addresses
// and ports are in network order, slots (numgen and hash results) in host order.

func addrBytes(a netip.Addr) []byte {
	b := a.As4()
	return b[:]
}

// portKeyBytes is the key of the ports map: protocol, 3 bytes padding, port, 2 bytes padding.
func portKeyBytes(k portKey) []byte {
	b := make([]byte, 8)
	b[0] = ipProto(k.proto)
	binary.BigEndian.PutUint16(b[4:], k.port)
	return b
}

// slotBytes appends a backend slot to a key.
func slotBytes(prefix []byte, slot uint32) []byte {
	b := append(append(make([]byte, 0, len(prefix)+4), prefix...), 0, 0, 0, 0)
	binary.NativeEndian.PutUint32(b[len(prefix):], slot)
	return b
}

// backendBytes is the data of a port-backends element: address, port, 2 bytes padding.
func backendBytes(b mesh.Backend) []byte {
	out := make([]byte, 8)
	copy(out, addrBytes(b.Addr))
	binary.BigEndian.PutUint16(out[4:], b.Port)
	return out
}

func parseAddr(b []byte) (netip.Addr, error) {
	if len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("address of %d bytes", len(b))
	}
	return netip.AddrFrom4([4]byte(b)), nil
}

func parsePortKey(b []byte) (portKey, error) {
	if len(b) != 8 {
		return portKey{}, fmt.Errorf("port key of %d bytes", len(b))
	}
	proto, ok := protoOf(b[0])
	if !ok {
		return portKey{}, fmt.Errorf("IP protocol %d", b[0])
	}
	return portKey{proto: proto, port: binary.BigEndian.Uint16(b[4:])}, nil
}

// parseSlotKey splits a backends key into its prefix and slot.
func parseSlotKey(b []byte, prefixLen int) ([]byte, uint32, error) {
	if len(b) != prefixLen+4 {
		return nil, 0, fmt.Errorf("backend key of %d bytes, want %d", len(b), prefixLen+4)
	}
	return b[:prefixLen], binary.NativeEndian.Uint32(b[prefixLen:]), nil
}

func parseBackend(b []byte) (mesh.Backend, error) {
	if len(b) != 8 {
		return mesh.Backend{}, fmt.Errorf("backend of %d bytes", len(b))
	}
	return mesh.Backend{Addr: netip.AddrFrom4([4]byte(b[:4])), Port: binary.BigEndian.Uint16(b[4:])}, nil
}
