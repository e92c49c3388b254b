package overlay

// This file owns the kernel side of a device's entries: dumping its FDB destinations and
// neighbour entries, and adding, replacing and deleting one at a time through netlink.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// openHandle opens a netlink socket in the calling thread's network namespace, for the many
// requests of one Sync or Inspect.
func openHandle() (*netlink.Handle, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open a netlink socket: %w", err)
	}
	return h, nil
}

// dumpAttempts bounds the retries of a dump the kernel reports as interrupted (the table
// changed while it was read).
const dumpAttempts = 5

// listNeighbours dumps one family of the neighbour table and keeps the entries of the link,
// retrying an interrupted dump.
func listNeighbours(h *netlink.Handle, linkIndex, family int) ([]netlink.Neigh, error) {
	var err error
	for range dumpAttempts {
		var ns []netlink.Neigh
		ns, err = h.NeighList(linkIndex, family)
		if err == nil {
			return ns, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("after %d attempts: %w", dumpAttempts, err)
}

// listFDB returns, from one dump of the AF_BRIDGE table for the device, the device's own FDB
// destinations (flag self) and the bridge's forwarding entries on the device's port (no flag
// self, the bridge as NDA_MASTER). Of the bridge's entries it leaves out the port's own address
// ownMAC (the bridge's local entry for it) and entries of a VLAN: shoal's bridges do not filter
// VLANs (shoal-bridge makes them so), and such an entry is not shoal's.
func listFDB(h *netlink.Handle, linkIndex int, ownMAC net.HardwareAddr) ([]fdbRecord, []bridgeRecord, error) {
	ns, err := listNeighbours(h, linkIndex, unix.AF_BRIDGE)
	if err != nil {
		return nil, nil, fmt.Errorf("dump the FDB: %w", err)
	}
	var out []fdbRecord
	var port []bridgeRecord
	for _, n := range ns {
		if len(n.HardwareAddr) != 6 {
			continue
		}
		if n.Flags&netlink.NTF_SELF == 0 {
			own := bytes.Equal(n.HardwareAddr, ownMAC) || (len(ownMAC) == 0 && n.State&netlink.NUD_PERMANENT != 0)
			if n.MasterIndex != 0 && n.Vlan == 0 && !own {
				r := bridgeRecord{kind: bridgeKindOf(n.State)}
				copy(r.mac[:], n.HardwareAddr)
				port = append(port, r)
			}
			continue
		}
		r := fdbRecord{
			dst:       netip.IPv4Unspecified(),
			vni:       uint32(n.VNI),
			permanent: n.State&netlink.NUD_PERMANENT != 0,
		}
		copy(r.mac[:], n.HardwareAddr)
		if a, ok := netip.AddrFromSlice(n.IP); ok {
			r.dst = a.Unmap()
		}
		out = append(out, r)
	}
	return out, port, nil
}

// listNeigh returns the device's IPv4 neighbour entries.
func listNeigh(h *netlink.Handle, linkIndex int) ([]neighRecord, error) {
	ns, err := listNeighbours(h, linkIndex, unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("dump the neighbour table: %w", err)
	}
	out := make([]neighRecord, 0, len(ns))
	for _, n := range ns {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		out = append(out, neighRecord{
			ip:        a.Unmap(),
			mac:       n.HardwareAddr,
			permanent: n.State&netlink.NUD_PERMANENT != 0,
		})
	}
	return out, nil
}

// fdbNeigh is the netlink message for an FDB destination of the device.
func fdbNeigh(linkIndex int, r fdbRecord) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    linkIndex,
		Family:       unix.AF_BRIDGE,
		Flags:        netlink.NTF_SELF,
		State:        netlink.NUD_PERMANENT,
		IP:           r.dst.AsSlice(),
		HardwareAddr: net.HardwareAddr(r.mac[:]),
		VNI:          int(r.vni),
	}
}

// setFDB adds a destination, or replaces the one a unicast MAC has (the kernel keeps the
// first destination and changes its VTEP). The all-zeros MAC takes one destination per peer, so
// its destinations are appended, which also makes an existing one permanent.
func setFDB(h *netlink.Handle, linkIndex int, r fdbRecord) error {
	n := fdbNeigh(linkIndex, r)
	if r.flood() {
		if err := h.NeighAppend(n); err != nil {
			return fmt.Errorf("append FDB entry %s dst %s: %w", n.HardwareAddr, r.dst, err)
		}
		return nil
	}
	if err := h.NeighSet(n); err != nil {
		return fmt.Errorf("set FDB entry %s dst %s: %w", n.HardwareAddr, r.dst, err)
	}
	return nil
}

// delFDB deletes one destination; it reports false when it was gone already.
func delFDB(h *netlink.Handle, linkIndex int, r fdbRecord) (bool, error) {
	n := fdbNeigh(linkIndex, r)
	n.State = 0
	if err := h.NeighDel(n); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("delete FDB entry %s dst %s: %w", n.HardwareAddr, r.dst, err)
	}
	return true, nil
}

// bridgeKindOf is the kind of a bridge forwarding entry in the kernel's state.
func bridgeKindOf(state int) BridgeKind {
	switch {
	case state&netlink.NUD_PERMANENT != 0:
		return BridgeLocal
	case state&netlink.NUD_NOARP != 0:
		return BridgeStatic
	default:
		return BridgeLearnt
	}
}

// bridgeNeigh is the netlink message for the bridge's static forwarding entry of mac on the
// device's port (`bridge fdb add MAC dev DEVICE master static`).
func bridgeNeigh(linkIndex int, mac [6]byte) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    linkIndex,
		Family:       unix.AF_BRIDGE,
		Flags:        netlink.NTF_MASTER,
		State:        netlink.NUD_NOARP,
		HardwareAddr: net.HardwareAddr(mac[:]),
	}
}

// setBridge adds the bridge's static entry of mac on the device's port, or makes the MAC's
// entry that (one learnt there or on another port is replaced).
func setBridge(h *netlink.Handle, linkIndex int, mac [6]byte) error {
	if err := h.NeighSet(bridgeNeigh(linkIndex, mac)); err != nil {
		return fmt.Errorf("set bridge entry %s: %w", macOf(mac), err)
	}
	return nil
}

// SetStaticBridgeEntry puts mac on bridge port portIndex of the calling thread's network
// namespace as a static forwarding entry (`bridge fdb replace MAC dev PORT master static`),
// moving it from any other port: shoal-bridge does so for a container's MAC as it attaches it.
func SetStaticBridgeEntry(portIndex int, mac net.HardwareAddr) error {
	var m [6]byte
	if len(mac) != len(m) {
		return fmt.Errorf("set bridge entry %s: not a 6-byte MAC", mac)
	}
	copy(m[:], mac)
	if err := netlink.NeighSet(bridgeNeigh(portIndex, m)); err != nil {
		return fmt.Errorf("set bridge entry %s: %w", mac, err)
	}
	return nil
}

// delBridge deletes the bridge's entry of mac if it is on the device's port; it reports false
// when there was none there (gone already, or learnt on another port since: a task that moved
// here, whose entry is then right).
func delBridge(h *netlink.Handle, linkIndex int, mac [6]byte) (bool, error) {
	n := bridgeNeigh(linkIndex, mac)
	n.State = 0
	if err := h.NeighDel(n); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("delete bridge entry %s: %w", macOf(mac), err)
	}
	return true, nil
}

// setNeigh adds or replaces a permanent neighbour entry.
func setNeigh(h *netlink.Handle, linkIndex int, r neighRecord) error {
	err := h.NeighSet(&netlink.Neigh{
		LinkIndex:    linkIndex,
		Family:       unix.AF_INET,
		State:        netlink.NUD_PERMANENT,
		Type:         unix.RTN_UNICAST,
		IP:           r.ip.AsSlice(),
		HardwareAddr: r.mac,
	})
	if err != nil {
		return fmt.Errorf("set neighbour entry %s lladdr %s: %w", r.ip, r.mac, err)
	}
	return nil
}

// delNeigh deletes a neighbour entry; it reports false when it was gone already.
func delNeigh(h *netlink.Handle, linkIndex int, r neighRecord) (bool, error) {
	err := h.NeighDel(&netlink.Neigh{
		LinkIndex: linkIndex,
		Family:    unix.AF_INET,
		IP:        r.ip.AsSlice(),
	})
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("delete neighbour entry %s: %w", r.ip, err)
	}
	return true, nil
}
