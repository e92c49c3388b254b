package overlay

// This file owns the plain values the caller hands in (Network, Endpoint, Desired, Config) and
// the ones Sync, Update and Devices hand back (Changes, Device). EndpointUpdate is in update.go.

import (
	"log/slog"
	"net"
	"net/netip"
)

// Network is what the overlay needs to know of one shoal network on this node.
type Network struct {
	ID     string // the network's ID (device names, logs)
	VNI    uint32 // 1 .. 2^24-1
	Bridge string // the local bridge (made by shoal-bridge; overlay never creates or deletes it)
	MTU    int    // MTU of the VXLAN device: the underlay MTU less the VXLAN overhead (50)
}

// Endpoint is one task's address on a network, and where it runs.
type Endpoint struct {
	IP   netip.Addr       // the task's IPv4 address on the network
	MAC  net.HardwareAddr // the task's MAC (shoal derives it from IP: 02:42 and the four bytes)
	VTEP netip.Addr       // the underlay address of the node it runs on
}

// Desired is a network's whole desired state on this node.
type Desired struct {
	Network Network
	// Endpoints are every endpoint of the network, on any node; those on this node
	// (VTEP == Config.LocalVTEP) get no entries.
	Endpoints []Endpoint
	// Peers are other nodes' VTEPs that take part in the network. Broadcasts are replicated
	// (one all-zeros FDB destination each) to the union of Peers and the VTEPs of the remote
	// Endpoints: a node with an endpoint of the network always takes part, so Peers need only
	// add nodes that take part without one. A VTEP in Peers keeps its destination while
	// Updates take its endpoints away; one that is only an endpoint's loses it with its last
	// endpoint. The local VTEP, if listed, is ignored.
	Peers []netip.Addr
}

// Config configures a Manager.
type Config struct {
	LocalVTEP netip.Addr   // this node's underlay address (the VXLAN local address)
	Port      int          // UDP port, 0 means DefaultPort
	Log       *slog.Logger // nil means slog.Default()
}

// DefaultPort is the IANA VXLAN port, used when Config.Port is 0.
const DefaultPort = 4789

// Changes is what one Sync or Update changed in the kernel. Entries count FDB, neighbour and
// bridge entries together (a remote endpoint has one of each, its MAC's FDB and bridge entries
// shared with endpoints of the same MAC); one all-zeros FDB destination counts as one entry. Update never touches
// the device.
type Changes struct {
	Added    int // entries that were missing
	Replaced int // entries that were wrong (a MAC at another VTEP, an IP with another MAC, not permanent, a learnt bridge entry)
	Removed  int // entries that were not desired
	// DeviceCreated: the VXLAN device was created, or deleted and created again because its
	// VNI, local address, port, learning, proxy or group were wrong.
	DeviceCreated bool
	// DeviceUpdated: an existing device's MTU, master, up state or bridge-port learning was
	// corrected in place.
	DeviceUpdated bool
}

// Changed reports whether the Sync or Update changed anything at all.
func (c Changes) Changed() bool {
	return c != Changes{}
}

// Device is one VXLAN device of a shoal network on this node.
type Device struct {
	Name string
	VNI  uint32
}
