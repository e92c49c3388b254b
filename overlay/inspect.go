package overlay

// This file owns Inspect and its Report: the kernel's view of a network's device and entries
// next to the desired one, for `netctl overlay inspect`. It changes nothing.

import (
	"fmt"
	"net"
	"net/netip"
)

// Report is how the kernel compares with a Desired on this node.
type Report struct {
	Device     DeviceReport
	FDB        []FDBEntry    // sorted by MAC, then VTEP
	Neighbours []NeighEntry  // sorted by IP
	Bridge     []BridgeEntry // the bridge's forwarding entries on the device's port, sorted by MAC
}

// DeviceReport is the network's VXLAN device as the kernel has it.
type DeviceReport struct {
	Name         string
	Exists       bool
	VNI          uint32
	Local        netip.Addr // invalid when the device has no local address
	Port         int
	MTU          int
	Master       string // "" when the device has no master
	Up           bool
	Learning     bool // learning of the VXLAN device
	Proxy        bool // proxy ARP of the VXLAN device
	PortLearning bool // learning of its bridge port
	// Problems say how the device differs from the desired one ("VNI 7, want 42"); empty when
	// it is as desired.
	Problems []string
}

// FDBEntry is one FDB destination of the device, desired and/or programmed. The all-zeros MAC
// stands for broadcast replication to a peer.
type FDBEntry struct {
	MAC        net.HardwareAddr
	Desired    netip.Addr // the VTEP desired; invalid when the entry is not desired
	Programmed netip.Addr // the VTEP in the kernel; invalid when the entry is missing
	Status     Status
	Detail     string // why the entry is wrong
}

// NeighEntry is one neighbour entry of the device, desired and/or programmed.
type NeighEntry struct {
	IP         netip.Addr
	Desired    net.HardwareAddr // nil when the entry is not desired
	Programmed net.HardwareAddr // nil when the entry is missing
	Status     Status
	Detail     string // why the entry is wrong
}

// BridgeEntry is one forwarding entry of the bridge on the device's port, desired and/or
// programmed: frames to MAC leave the bridge through the device. A remote endpoint's MAC wants a
// static one.
type BridgeEntry struct {
	MAC        net.HardwareAddr
	Desired    bool       // a remote endpoint has the MAC
	Programmed bool       // the bridge has an entry of the MAC on the device's port
	Kind       BridgeKind // the programmed entry's; "" when it is missing
	Status     Status
	Detail     string // why the entry is wrong
}

// Clean reports whether the kernel is as desired: the device exists without problems and every
// entry is ok.
func (r Report) Clean() bool {
	if !r.Device.Exists || len(r.Device.Problems) > 0 {
		return false
	}
	for _, e := range r.FDB {
		if e.Status != StatusOK {
			return false
		}
	}
	for _, e := range r.Neighbours {
		if e.Status != StatusOK {
			return false
		}
	}
	for _, e := range r.Bridge {
		if e.Status != StatusOK {
			return false
		}
	}
	return true
}

// Inspect compares the kernel with d: the device as it is and every FDB, neighbour and bridge entry,
// desired and/or programmed, each with its status. It applies Sync's rules, so a Clean report
// means Sync would change nothing. Without the device, every desired entry is missing.
func (m *Manager) Inspect(d Desired) (Report, error) {
	w, err := validateDesired(d, m.cfg)
	if err != nil {
		return Report{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := Report{Device: DeviceReport{Name: w.device.name}}
	st, err := readDevice(w.device.name)
	if err != nil {
		return Report{}, fmt.Errorf("inspect network %s: %w", d.Network.ID, err)
	}
	p := entryPlan{fdb: diffFDB(w.fdb, nil), neigh: diffNeigh(w.neigh, nil), bridge: diffBridge(w.bridgeEntries(), nil)}
	if st == nil {
		r.Device.Problems = []string{"missing"}
	} else {
		r.Device = deviceReport(w.device, st)
		h, err := openHandle()
		if err != nil {
			return Report{}, fmt.Errorf("inspect network %s: %w", d.Network.ID, err)
		}
		defer h.Close()
		if p, err = planEntries(h, st.link.Index, st.link.HardwareAddr, w); err != nil {
			return Report{}, fmt.Errorf("inspect network %s: device %q: %w", d.Network.ID, w.device.name, err)
		}
	}
	for _, e := range p.fdb {
		r.FDB = append(r.FDB, fdbEntry(e))
	}
	for _, e := range p.neigh {
		r.Neighbours = append(r.Neighbours, neighEntry(e))
	}
	for _, e := range p.bridge {
		r.Bridge = append(r.Bridge, bridgeEntry(e))
	}
	return r, nil
}

func deviceReport(s deviceSpec, st *deviceState) DeviceReport {
	return DeviceReport{
		Name:         s.name,
		Exists:       true,
		VNI:          st.vni,
		Local:        st.local,
		Port:         st.port,
		MTU:          st.mtu,
		Master:       st.master,
		Up:           st.up,
		Learning:     st.learning,
		Proxy:        st.proxy,
		PortLearning: st.portLearning,
		Problems:     append(st.recreateReasons(s), st.fixReasons(s)...),
	}
}

func fdbEntry(d fdbDiff) FDBEntry {
	e := FDBEntry{MAC: macOf(d.record().mac), Status: d.status, Detail: d.detail}
	if d.want != nil {
		e.Desired = d.want.dst
	}
	if d.have != nil {
		e.Programmed = d.have.dst
	}
	return e
}

func bridgeEntry(d bridgeDiff) BridgeEntry {
	e := BridgeEntry{MAC: macOf(d.mac()), Desired: d.want != nil, Programmed: d.have != nil, Status: d.status, Detail: d.detail}
	if d.have != nil {
		e.Kind = d.have.kind
	}
	return e
}

func neighEntry(d neighDiff) NeighEntry {
	e := NeighEntry{IP: d.ip(), Status: d.status, Detail: d.detail}
	if d.want != nil {
		e.Desired = d.want.mac
	}
	if d.have != nil {
		e.Programmed = d.have.mac
	}
	return e
}
