package overlay

// This file checks the caller's input and turns a valid Desired into the entries this node must
// hold (wanted), and a valid EndpointUpdate into checked endpoints (checkedUpdate). Nothing here
// touches the kernel, so a refused input changes nothing.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

const (
	maxVNI    = 1<<24 - 1
	minMTU    = 68 // the least IPv4 allows
	maxMTU    = 65535
	maxIfName = 15 // IFNAMSIZ less the terminating NUL
)

// wanted is a Desired as this node must program it: the device and its entries, and the
// checked endpoints and peers they come from (what the Manager remembers after a Sync).
type wanted struct {
	device    deviceSpec
	fdb       []fdbRecord   // unicast MAC → VTEP for remote endpoints, then all-zeros MAC → peer
	neigh     []neighRecord // IP → MAC for remote endpoints
	endpoints []endpoint    // every endpoint, local ones too, in the order given
	peers     []netip.Addr  // Desired.Peers once each, without the local VTEP
}

// endpoint is a checked Endpoint: IPv4 addresses in their 4-byte form, the MAC as an array.
type endpoint struct {
	ip   netip.Addr
	mac  [6]byte
	vtep netip.Addr
}

func invalid(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// validateConfig checks cfg and fills in the defaults.
func validateConfig(cfg Config) (Config, error) {
	local, why := vtepAddr(cfg.LocalVTEP)
	if why != "" {
		return Config{}, invalid("LocalVTEP", "%s", why)
	}
	cfg.LocalVTEP = local
	switch {
	case cfg.Port == 0:
		cfg.Port = DefaultPort
	case cfg.Port < 0 || cfg.Port > 65535:
		return Config{}, invalid("Port", "%d is not a UDP port (1..65535, or 0 for %d)", cfg.Port, DefaultPort)
	}
	return cfg, nil
}

// validateNetwork checks n and returns its device's name.
func validateNetwork(n Network) (string, error) {
	if err := validateNetworkID(n.ID); err != nil {
		return "", err
	}
	if n.VNI < 1 || n.VNI > maxVNI {
		return "", invalid("Network.VNI", "%d is outside 1..%d", n.VNI, maxVNI)
	}
	if err := validateIfName("Network.Bridge", n.Bridge); err != nil {
		return "", err
	}
	if n.MTU < minMTU || n.MTU > maxMTU {
		return "", invalid("Network.MTU", "%d is outside %d..%d", n.MTU, minMTU, maxMTU)
	}
	return DeviceName(n.ID), nil
}

// validateNetworkID checks that the ID gives a usable device name.
func validateNetworkID(id string) error {
	if id == "" {
		return invalid("Network.ID", "empty")
	}
	if problem := ifNameProblem(DeviceName(id)); problem != "" {
		return invalid("Network.ID", "%q does not give a valid device name: %s", id, problem)
	}
	return nil
}

// validateIfName applies the kernel's rules for interface names to a field.
func validateIfName(field, name string) error {
	if problem := ifNameProblem(name); problem != "" {
		return invalid(field, "%s", problem)
	}
	return nil
}

// ifNameProblem says what is wrong with name as an interface name (the kernel's
// dev_valid_name), or "" when nothing is.
func ifNameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > maxIfName:
		return fmt.Sprintf("%q is longer than %d bytes", name, maxIfName)
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a device name", name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return fmt.Sprintf("%q holds '/', ':' or white space", name)
	}
	return ""
}

// validateDesired checks d and returns what this node must program for it.
func validateDesired(d Desired, cfg Config) (wanted, error) {
	name, err := validateNetwork(d.Network)
	if err != nil {
		return wanted{}, err
	}
	w := wanted{device: deviceSpec{
		name:   name,
		vni:    d.Network.VNI,
		local:  cfg.LocalVTEP,
		port:   cfg.Port,
		mtu:    d.Network.MTU,
		bridge: d.Network.Bridge,
	}}
	if err := w.addEndpoints(d.Endpoints, cfg.LocalVTEP); err != nil {
		return wanted{}, err
	}
	if err := w.addPeers(d.Peers, cfg.LocalVTEP); err != nil {
		return wanted{}, err
	}
	w.addFloodDestinations(cfg.LocalVTEP)
	return w, nil
}

// addEndpoints adds the endpoints and the entries of the remote ones. An IP may appear once; a
// MAC may appear more than once only at one VTEP (it then gets one FDB entry).
func (w *wanted) addEndpoints(eps []Endpoint, local netip.Addr) error {
	ipAt := make(map[netip.Addr]int, len(eps))
	macAt := make(map[[6]byte]int, len(eps))
	w.endpoints = make([]endpoint, 0, len(eps))
	for i, raw := range eps {
		field := func(name string) string { return fmt.Sprintf("Endpoints[%d].%s", i, name) }
		ep, err := checkEndpoint(raw, field)
		if err != nil {
			return err
		}
		if j, dup := ipAt[ep.ip]; dup {
			return invalid(field("IP"), "%s is also Endpoints[%d].IP", ep.ip, j)
		}
		ipAt[ep.ip] = i
		j, macSeen := macAt[ep.mac]
		if macSeen && w.endpoints[j].vtep != ep.vtep {
			return invalid(field("MAC"), "%s is also Endpoints[%d].MAC, at VTEP %s, not %s", raw.MAC, j, w.endpoints[j].vtep, ep.vtep)
		}
		macAt[ep.mac] = i
		w.endpoints = append(w.endpoints, ep)
		if ep.vtep == local {
			continue
		}
		w.neigh = append(w.neigh, neighRecord{ip: ep.ip, mac: append(net.HardwareAddr(nil), ep.mac[:]...), permanent: true})
		if !macSeen {
			w.fdb = append(w.fdb, fdbRecord{mac: ep.mac, dst: ep.vtep, permanent: true})
		}
	}
	return nil
}

// bridgeEntries are the bridge entries the device's port must hold: a static one for the MAC of
// every unicast FDB entry (every remote endpoint's MAC).
func (w *wanted) bridgeEntries() []bridgeRecord {
	out := make([]bridgeRecord, 0, len(w.fdb))
	for _, r := range w.fdb {
		if !r.flood() {
			out = append(out, bridgeRecord{mac: r.mac, kind: BridgeStatic})
		}
	}
	return out
}

// checkEndpoint checks one endpoint on its own; field gives the name of one of its fields in
// the input ("IP" → "Endpoints[3].IP"), for a refusal.
func checkEndpoint(ep Endpoint, field func(name string) string) (endpoint, error) {
	ip, why := ipv4Addr(ep.IP)
	if why != "" {
		return endpoint{}, invalid(field("IP"), "%s", why)
	}
	mac, why := unicastMAC(ep.MAC)
	if why != "" {
		return endpoint{}, invalid(field("MAC"), "%s", why)
	}
	vtep, why := vtepAddr(ep.VTEP)
	if why != "" {
		return endpoint{}, invalid(field("VTEP"), "%s", why)
	}
	return endpoint{ip: ip, mac: mac, vtep: vtep}, nil
}

// addPeers checks the peers and keeps each once; the local VTEP is skipped.
func (w *wanted) addPeers(peers []netip.Addr, local netip.Addr) error {
	seen := make(map[netip.Addr]bool, len(peers))
	for i, p := range peers {
		vtep, why := vtepAddr(p)
		if why != "" {
			return invalid(fmt.Sprintf("Peers[%d]", i), "%s", why)
		}
		if vtep == local || seen[vtep] {
			continue
		}
		seen[vtep] = true
		w.peers = append(w.peers, vtep)
	}
	return nil
}

// addFloodDestinations adds one all-zeros FDB entry per VTEP that takes part in the network:
// the peers, then the VTEPs of remote endpoints that are no peer, each once.
func (w *wanted) addFloodDestinations(local netip.Addr) {
	seen := make(map[netip.Addr]bool, len(w.peers))
	add := func(vtep netip.Addr) {
		if vtep == local || seen[vtep] {
			return
		}
		seen[vtep] = true
		w.fdb = append(w.fdb, fdbRecord{dst: vtep, permanent: true})
	}
	for _, p := range w.peers {
		add(p)
	}
	for _, ep := range w.endpoints {
		add(ep.vtep)
	}
}

// checkedUpdate is a checked EndpointUpdate.
type checkedUpdate struct {
	set     []endpoint
	removed []netip.Addr
}

// checkUpdate checks u on its own: each endpoint of Set as Sync checks Desired.Endpoints, an IP
// once in Set, a MAC in Set at one VTEP, each removed IP an IPv4 unicast address. Whether Set's
// MACs agree with the endpoints of the network that stay needs the network's state:
// newStateDelta checks that.
func checkUpdate(u EndpointUpdate) (checkedUpdate, error) {
	c := checkedUpdate{set: make([]endpoint, 0, len(u.Set)), removed: make([]netip.Addr, 0, len(u.Removed))}
	for i, a := range u.Removed {
		ip, why := ipv4Addr(a)
		if why != "" {
			return checkedUpdate{}, invalid(fmt.Sprintf("Removed[%d]", i), "%s", why)
		}
		c.removed = append(c.removed, ip)
	}
	ipAt := make(map[netip.Addr]int, len(u.Set))
	macAt := make(map[[6]byte]int, len(u.Set))
	for i, raw := range u.Set {
		field := func(name string) string { return fmt.Sprintf("Set[%d].%s", i, name) }
		ep, err := checkEndpoint(raw, field)
		if err != nil {
			return checkedUpdate{}, err
		}
		if j, dup := ipAt[ep.ip]; dup {
			return checkedUpdate{}, invalid(field("IP"), "%s is also Set[%d].IP", ep.ip, j)
		}
		if j, dup := macAt[ep.mac]; dup && c.set[j].vtep != ep.vtep {
			return checkedUpdate{}, invalid(field("MAC"), "%s is also Set[%d].MAC, at VTEP %s, not %s", raw.MAC, j, c.set[j].vtep, ep.vtep)
		}
		ipAt[ep.ip], macAt[ep.mac] = i, i
		c.set = append(c.set, ep)
	}
	return c, nil
}

// ipv4Addr accepts an IPv4 unicast address (also in its IPv4-mapped IPv6 form, which net.IP
// conversions produce) and returns it in 4-byte form; otherwise it says why not.
func ipv4Addr(a netip.Addr) (netip.Addr, string) {
	switch {
	case !a.IsValid():
		return netip.Addr{}, "not set"
	case !a.Unmap().Is4():
		return netip.Addr{}, fmt.Sprintf("%s is not an IPv4 address (only IPv4 is supported)", a)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}, fmt.Sprintf("%s is not a unicast address", a)
	}
	return a, ""
}

// vtepAddr accepts a node's underlay address: unicast IPv4, not loopback.
func vtepAddr(a netip.Addr) (netip.Addr, string) {
	a, why := ipv4Addr(a)
	if why == "" && a.IsLoopback() {
		return netip.Addr{}, fmt.Sprintf("%s is a loopback address", a)
	}
	return a, why
}

// unicastMAC accepts a 6-byte unicast MAC that is not all zeros.
func unicastMAC(mac net.HardwareAddr) ([6]byte, string) {
	var m [6]byte
	switch {
	case len(mac) != 6:
		return m, fmt.Sprintf("%q is %d bytes, not 6", mac.String(), len(mac))
	case mac[0]&1 != 0:
		return m, fmt.Sprintf("%s is a multicast MAC", mac)
	}
	copy(m[:], mac)
	if m == ([6]byte{}) {
		return m, "all zeros"
	}
	return m, ""
}
