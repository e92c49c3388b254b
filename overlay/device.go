package overlay

// This file owns a network's VXLAN device: its name, the parameters it must have, reading it back
// from the kernel, and ensuring it (create, recreate when a parameter that cannot change in place
// is wrong, correct MTU, master, bridge-port learning and up state in place).

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// devicePrefix marks the VXLAN devices of shoal networks.
const devicePrefix = "shx"

// DeviceName is the name of a network's VXLAN device: "shx" and the first 10 characters of the
// network's ID, 13 characters, within the kernel's 15.
func DeviceName(networkID string) string {
	if len(networkID) > 10 {
		networkID = networkID[:10]
	}
	return devicePrefix + networkID
}

// deviceSpec is what a network's device must be.
type deviceSpec struct {
	name   string
	vni    uint32
	local  netip.Addr
	port   int
	mtu    int
	bridge string
}

// link is the device to create for s: no learning, proxy ARP, no group, not up, no master.
func (s deviceSpec) link() *netlink.Vxlan {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = s.name
	attrs.MTU = s.mtu
	return &netlink.Vxlan{
		LinkAttrs: attrs,
		VxlanId:   int(s.vni),
		SrcAddr:   s.local.AsSlice(),
		Port:      s.port,
		Learning:  false,
		Proxy:     true,
	}
}

// deviceState is a VXLAN device as the kernel has it.
type deviceState struct {
	link         *netlink.Vxlan
	vni          uint32
	local        netip.Addr // invalid when the device has none
	port         int
	group        netip.Addr // invalid when the device has none
	learning     bool
	proxy        bool
	external     bool // flow-based (collect metadata): no VNI of its own
	mtu          int
	master       string // "" when the device has no master
	up           bool
	portLearning bool // learning on the device's bridge port; false when it is no port
}

// readDevice looks the device up. It returns (nil, nil) when there is no link called name, and
// an error when the link is not a VXLAN device.
func readDevice(name string) (*deviceState, error) {
	link, err := netlinksafe.LinkByName(name)
	if isLinkNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up device %q: %w", name, err)
	}
	vx, ok := link.(*netlink.Vxlan)
	if !ok {
		return nil, fmt.Errorf("device %q exists and is a %s device, not vxlan: shoal leaves it alone", name, link.Type())
	}
	st := &deviceState{
		link:     vx,
		vni:      uint32(vx.VxlanId),
		local:    addrFromIP(vx.SrcAddr),
		port:     vx.Port,
		group:    addrFromIP(vx.Group),
		learning: vx.Learning,
		proxy:    vx.Proxy,
		external: vx.FlowBased,
		mtu:      vx.MTU,
		up:       vx.Flags&net.FlagUp != 0,
	}
	if vx.MasterIndex != 0 {
		master, err := netlink.LinkByIndex(vx.MasterIndex)
		if err != nil {
			return nil, fmt.Errorf("look up the master (index %d) of device %q: %w", vx.MasterIndex, name, err)
		}
		st.master = master.Attrs().Name
		if master.Type() == "bridge" {
			info, err := netlinksafe.LinkGetProtinfo(vx)
			if err != nil {
				return nil, fmt.Errorf("read the bridge-port settings of device %q: %w", name, err)
			}
			st.portLearning = info.Learning
		}
	}
	return st, nil
}

// recreateReasons lists the parameters of st that differ from s and cannot be changed in place;
// empty when the device can stay.
func (st *deviceState) recreateReasons(s deviceSpec) []string {
	var r []string
	if st.external {
		r = append(r, "flow-based (external), want a VNI of its own")
	}
	if st.vni != s.vni {
		r = append(r, fmt.Sprintf("VNI %d, want %d", st.vni, s.vni))
	}
	if st.local != s.local {
		r = append(r, fmt.Sprintf("local %s, want %s", addrText(st.local), s.local))
	}
	if st.port != s.port {
		r = append(r, fmt.Sprintf("port %d, want %d", st.port, s.port))
	}
	if st.group.IsValid() {
		r = append(r, fmt.Sprintf("group %s, want none", st.group))
	}
	if st.learning {
		r = append(r, "learning on, want off")
	}
	if !st.proxy {
		r = append(r, "proxy off, want on")
	}
	return r
}

// fixReasons lists what differs from s and is corrected in place.
func (st *deviceState) fixReasons(s deviceSpec) []string {
	var r []string
	if st.mtu != s.mtu {
		r = append(r, fmt.Sprintf("MTU %d, want %d", st.mtu, s.mtu))
	}
	if st.master != s.bridge {
		r = append(r, fmt.Sprintf("master %q, want bridge %q", st.master, s.bridge))
	}
	if st.portLearning {
		r = append(r, "bridge-port learning on, want off")
	}
	if !st.up {
		r = append(r, "down, want up")
	}
	return r
}

// lookupBridge returns the network's bridge, or an error wrapping ErrNoBridge when it does not
// exist.
func lookupBridge(name string) (netlink.Link, error) {
	link, err := netlinksafe.LinkByName(name)
	if isLinkNotFound(err) {
		return nil, fmt.Errorf("%w: %q", ErrNoBridge, name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up bridge %q: %w", name, err)
	}
	if link.Type() != "bridge" {
		return nil, fmt.Errorf("%q is a %s device, not a bridge", name, link.Type())
	}
	return link, nil
}

// ensureDevice makes the device as s says, enslaved to br, and returns it with what it changed:
// created (new, or deleted and made again) and updated (corrected in place).
func ensureDevice(s deviceSpec, br netlink.Link, log *slog.Logger) (dev *netlink.Vxlan, created, updated bool, err error) {
	st, err := readDevice(s.name)
	if err != nil {
		return nil, false, false, err
	}
	if st != nil {
		if reasons := st.recreateReasons(s); len(reasons) > 0 {
			log.Warn("recreating VXLAN device with wrong parameters", "device", s.name, "wrong", strings.Join(reasons, "; "))
			if err := netlink.LinkDel(st.link); err != nil && !isGone(err) {
				return nil, false, false, fmt.Errorf("delete device %q to recreate it (%s): %w", s.name, strings.Join(reasons, "; "), err)
			}
			st = nil
		}
	}
	if st == nil {
		if err := createDevice(s); err != nil {
			return nil, false, false, err
		}
		created = true
		if st, err = readDevice(s.name); err != nil {
			return nil, false, false, err
		}
		if st == nil {
			return nil, false, false, fmt.Errorf("device %q is gone right after creating it", s.name)
		}
	}
	fixed, err := fixDevice(s, st, br)
	if err != nil {
		return nil, false, false, err
	}
	return st.link, created, fixed && !created, nil
}

// createDevice adds the device.
func createDevice(s deviceSpec) error {
	err := netlink.LinkAdd(s.link())
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create VXLAN device %q (VNI %d, local %s, port %d): %w: another VXLAN device may use the same VNI, local address and port",
			s.name, s.vni, s.local, s.port, err)
	}
	if err != nil {
		return fmt.Errorf("create VXLAN device %q (VNI %d, local %s, port %d): %w", s.name, s.vni, s.local, s.port, err)
	}
	return nil
}

// fixDevice corrects MTU, master, bridge-port learning and up state in place, in that order: the
// MTU is right before the bridge sees the port, and the port joins forwarding last.
func fixDevice(s deviceSpec, st *deviceState, br netlink.Link) (bool, error) {
	changed := false
	if st.mtu != s.mtu {
		if err := netlink.LinkSetMTU(st.link, s.mtu); err != nil {
			return changed, fmt.Errorf("set MTU %d on device %q: %w", s.mtu, s.name, err)
		}
		changed = true
	}
	if st.master != s.bridge {
		if err := netlink.LinkSetMasterByIndex(st.link, br.Attrs().Index); err != nil {
			return changed, fmt.Errorf("enslave device %q to bridge %q: %w", s.name, s.bridge, err)
		}
		changed = true
		// A new port starts with the bridge's defaults, learning on.
		st.portLearning = true
	}
	if st.portLearning {
		if err := netlink.LinkSetLearning(st.link, false); err != nil {
			return changed, fmt.Errorf("turn learning off on the bridge port of device %q: %w", s.name, err)
		}
		changed = true
	}
	if !st.up {
		if err := netlink.LinkSetUp(st.link); err != nil {
			return changed, fmt.Errorf("set device %q up: %w", s.name, err)
		}
		changed = true
	}
	return changed, nil
}

// deleteDevice deletes the VXLAN device called name and reports whether it did; one already
// gone is fine.
func deleteDevice(name string) (bool, error) {
	st, err := readDevice(name)
	if err != nil || st == nil {
		return false, err
	}
	if err := netlink.LinkDel(st.link); err != nil {
		if isGone(err) {
			return false, nil
		}
		return false, fmt.Errorf("delete device %q: %w", name, err)
	}
	return true, nil
}

// listDevices returns the VXLAN devices whose names carry shoal's prefix.
func listDevices() ([]Device, error) {
	links, err := netlinksafe.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var devs []Device
	for _, l := range links {
		vx, ok := l.(*netlink.Vxlan)
		if !ok || !strings.HasPrefix(vx.Name, devicePrefix) {
			continue
		}
		devs = append(devs, Device{Name: vx.Name, VNI: uint32(vx.VxlanId)})
	}
	return devs, nil
}

func isLinkNotFound(err error) bool {
	var notFound netlink.LinkNotFoundError
	return errors.As(err, &notFound)
}

// isGone reports whether err says the link no longer exists.
func isGone(err error) bool {
	return isLinkNotFound(err) || errors.Is(err, unix.ENODEV)
}

// addrFromIP converts a kernel address, IPv4 in 4-byte form; invalid for nil or unspecified.
func addrFromIP(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a.Unmap()
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}
