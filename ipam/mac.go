package ipam

import (
	"net"
	"net/netip"
)

// MACOf is the MAC address of the interface holding addr: 02:42 (locally
// administered, unicast) and the address's last four bytes. It depends on
// the address alone, so a task keeps its MAC wherever it runs and its peers'
// ARP caches stay right when it moves; only the nodes' forwarding entries
// change.
func MACOf(addr netip.Addr) net.HardwareAddr {
	b := addr.Unmap().AsSlice()
	return net.HardwareAddr(append([]byte{0x02, 0x42}, b[len(b)-4:]...))
}
