package overlay

// This file checks the caller's input and turns a valid Desired into the entries this node must
// hold (wanted). Nothing here touches the kernel, so a refused input changes nothing.

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

// wanted is a Desired as this node must program it: the device and its entries.
type wanted struct {
	device deviceSpec
	fdb    []fdbRecord   // unicast MAC → VTEP for remote endpoints, then all-zeros MAC → peer
	neigh  []neighRecord // IP → MAC for remote endpoints
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
	return w, nil
}

// addEndpoints adds the entries of the remote endpoints. An IP may appear once; a MAC may appear
// more than once only at one VTEP (it then gets one FDB entry).
func (w *wanted) addEndpoints(eps []Endpoint, local netip.Addr) error {
	ipAt := make(map[netip.Addr]int, len(eps))
	macAt := make(map[[6]byte]int, len(eps))
	field := func(i int, name string) string { return fmt.Sprintf("Endpoints[%d].%s", i, name) }
	for i, ep := range eps {
		ip, why := ipv4Addr(ep.IP)
		if why != "" {
			return invalid(field(i, "IP"), "%s", why)
		}
		mac, why := unicastMAC(ep.MAC)
		if why != "" {
			return invalid(field(i, "MAC"), "%s", why)
		}
		vtep, why := vtepAddr(ep.VTEP)
		if why != "" {
			return invalid(field(i, "VTEP"), "%s", why)
		}
		if j, dup := ipAt[ip]; dup {
			return invalid(field(i, "IP"), "%s is also Endpoints[%d].IP", ip, j)
		}
		ipAt[ip] = i
		if j, dup := macAt[mac]; dup {
			if other, _ := vtepAddr(eps[j].VTEP); other != vtep {
				return invalid(field(i, "MAC"), "%s is also Endpoints[%d].MAC, at VTEP %s, not %s", ep.MAC, j, other, vtep)
			}
		}
		if vtep == local {
			macAt[mac] = i
			continue
		}
		w.neigh = append(w.neigh, neighRecord{ip: ip, mac: append(net.HardwareAddr(nil), mac[:]...), permanent: true})
		if _, dup := macAt[mac]; !dup {
			w.fdb = append(w.fdb, fdbRecord{mac: mac, dst: vtep, permanent: true})
		}
		macAt[mac] = i
	}
	return nil
}

// addPeers adds one all-zeros FDB entry per peer, once each; the local VTEP is skipped.
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
		w.fdb = append(w.fdb, fdbRecord{dst: vtep, permanent: true})
	}
	return nil
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
