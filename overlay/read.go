package overlay

// This file owns Read: a network's overlay as the kernel has it, raw, with nothing desired to
// compare it with — what a node reports when a manager asks (netctl compares it with what the
// cluster wants).

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Kernel is a network's VXLAN device and its entries as the kernel has them.
type Kernel struct {
	Device     DeviceReport  // Problems is empty: nothing is desired here
	FDB        []KernelFDB   // sorted by MAC, then VTEP
	Neighbours []KernelNeigh // sorted by IP
	// Bridge are the bridge's forwarding entries on the device's port (frames to these MACs
	// leave the bridge through the device, or, for a local entry, go to the node), sorted by
	// MAC; the entry of the device's own MAC and entries of a VLAN are left out.
	Bridge []KernelBridge
}

// KernelBridge is one forwarding entry of the bridge on the device's port.
type KernelBridge struct {
	MAC  net.HardwareAddr
	Kind BridgeKind
}

// BridgeKind is how the bridge holds a forwarding entry.
type BridgeKind string

// The kinds of a bridge forwarding entry.
const (
	BridgeStatic BridgeKind = "static" // added (by the Manager or by hand), kept until deleted
	BridgeLearnt BridgeKind = "learnt" // learnt from a frame, aged out by the kernel
	BridgeLocal  BridgeKind = "local"  // the bridge's own address: frames to it go to the node
)

// KernelFDB is one FDB destination of the device: MAC (all zeros: broadcast replication) → VTEP.
type KernelFDB struct {
	MAC       net.HardwareAddr
	VTEP      netip.Addr
	Permanent bool
}

// KernelNeigh is one neighbour entry of the device: IP → MAC.
type KernelNeigh struct {
	IP        netip.Addr
	MAC       net.HardwareAddr // nil when the entry has no link-layer address
	Permanent bool
}

// Read returns network networkID's device and entries as the kernel has them; Device.Exists is
// false when there is no device.
func (m *Manager) Read(networkID string) (Kernel, error) {
	if err := validateNetworkID(networkID); err != nil {
		return Kernel{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	name := DeviceName(networkID)
	k := Kernel{Device: DeviceReport{Name: name}}
	st, err := readDevice(name)
	if err != nil || st == nil {
		return k, err
	}
	k.Device = deviceReport(deviceSpec{name: name, vni: st.vni, local: st.local, port: st.port, mtu: st.mtu, bridge: st.master}, st)
	k.Device.Problems = nil
	h, err := openHandle()
	if err != nil {
		return Kernel{}, fmt.Errorf("read network %s: %w", networkID, err)
	}
	defer h.Close()
	fdb, bridge, err := listFDB(h, st.link.Index, st.link.HardwareAddr)
	if err != nil {
		return Kernel{}, fmt.Errorf("read network %s: %w", networkID, err)
	}
	for _, r := range fdb {
		k.FDB = append(k.FDB, KernelFDB{MAC: macOf(r.mac), VTEP: r.dst, Permanent: r.permanent})
	}
	slices.SortFunc(k.FDB, func(a, b KernelFDB) int {
		if c := slices.Compare(a.MAC, b.MAC); c != 0 {
			return c
		}
		return a.VTEP.Compare(b.VTEP)
	})
	for _, r := range bridge {
		k.Bridge = append(k.Bridge, KernelBridge{MAC: macOf(r.mac), Kind: r.kind})
	}
	slices.SortFunc(k.Bridge, func(a, b KernelBridge) int { return slices.Compare(a.MAC, b.MAC) })
	neigh, err := listNeigh(h, st.link.Index)
	if err != nil {
		return Kernel{}, fmt.Errorf("read network %s: %w", networkID, err)
	}
	for _, r := range neigh {
		k.Neighbours = append(k.Neighbours, KernelNeigh{IP: r.ip, MAC: r.mac, Permanent: r.permanent})
	}
	slices.SortFunc(k.Neighbours, func(a, b KernelNeigh) int { return a.IP.Compare(b.IP) })
	return k, nil
}
