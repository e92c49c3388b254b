package overlay

// This file owns the kernel side of a device's entries: dumping its FDB destinations and
// neighbour entries, and adding, replacing and deleting one at a time through netlink.

import (
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

// listFDB returns the device's own FDB destinations (flag self). The same dump holds the
// bridge's entries for the port (without that flag, with the bridge as NDA_MASTER); they are not
// the device's.
func listFDB(h *netlink.Handle, linkIndex int) ([]fdbRecord, error) {
	ns, err := listNeighbours(h, linkIndex, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("dump the FDB: %w", err)
	}
	var out []fdbRecord
	for _, n := range ns {
		if n.Flags&netlink.NTF_SELF == 0 || len(n.HardwareAddr) != 6 {
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
	return out, nil
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
