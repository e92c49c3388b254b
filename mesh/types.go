package mesh

// This file owns the plain values a Balancer is programmed with (State and its VIPs and Ports),
// the values it hands back (Changes, Difference), the Balancer interface, and the checks every
// backend runs before it touches the kernel (State.Validate, FieldError).

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Protocol is a published port's transport protocol.
type Protocol uint8

// The protocols a port can be published with.
const (
	TCP Protocol = iota + 1
	UDP
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "protocol(" + strconv.Itoa(int(p)) + ")"
}

// ParseProtocol is the inverse of Protocol.String for the valid protocols.
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp or udp)", s)
}

// PublishMode says where a published port is served and by which tasks.
type PublishMode uint8

// The publish modes.
const (
	// Ingress: the routing mesh — every node answers at the published port and balances over
	// every running task of the service, on any node, with the node's SNAT address as source.
	Ingress PublishMode = iota + 1
	// Host: only the nodes running a task answer, with their local tasks, and the client's
	// address is kept.
	Host
)

func (m PublishMode) String() string {
	switch m {
	case Ingress:
		return "ingress"
	case Host:
		return "host"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Selection is how a backend is chosen for a new connection.
type Selection uint8

// The selections.
const (
	// Random picks a backend uniformly at random for every new connection (the default).
	Random Selection = iota
	// Hash picks by a hash of the client's address: a client keeps its backend for as long as
	// the backend set does not change (client affinity).
	Hash
)

func (s Selection) String() string {
	switch s {
	case Random:
		return "random"
	case Hash:
		return "hash"
	}
	return "selection(" + strconv.Itoa(int(s)) + ")"
}

// VIP is one service's virtual IP on one network.
type VIP struct {
	Service string     // service ID
	Name    string     // service name (for people)
	Network string     // network ID
	Addr    netip.Addr // the VIP, IPv4
	// Backends are the RUNNING task IPs of the service on that network, on any node. Order does
	// not matter. Empty: connections to the VIP are refused.
	Backends []netip.Addr
}

// Backend is one task a published port sends connections to.
type Backend struct {
	Addr netip.Addr // the task's IPv4 address
	Port uint16     // the task's port (the service's target port)
}

func (b Backend) String() string {
	return netip.AddrPortFrom(b.Addr, b.Port).String()
}

// Port is one published port of a service.
type Port struct {
	Service  string // service ID
	Name     string // service name (for people)
	Protocol Protocol
	// Published is the port clients connect to, on any local address of the node.
	Published uint16
	Mode      PublishMode
	// Backends: for Ingress, every RUNNING task of the service on any node; connections are
	// DNATed to one and SNATed to State.SNAT so replies return through this node. For Host,
	// only the tasks on this node; DNAT only, the client's address is kept. Empty: connections
	// are refused.
	Backends []Backend
}

// Key names the port as "tcp/8080": unique within a State.
func (p Port) Key() string {
	return p.PortKey().String()
}

// PortKey is what keys a published port within a State: its protocol and published port.
type PortKey struct {
	Protocol  Protocol
	Published uint16
}

// PortKey returns the port's key.
func (p Port) PortKey() PortKey { return PortKey{Protocol: p.Protocol, Published: p.Published} }

// String names the key as "tcp/8080".
func (k PortKey) String() string {
	return k.Protocol.String() + "/" + strconv.Itoa(int(k.Published))
}

// State is everything one node's load balancer must hold.
type State struct {
	VIPs  []VIP
	Ports []Port
	// SNAT is this node's own address (its data-path address), used as source toward the
	// backends of ingress ports and, by the nftables backend, of the node's own connections to
	// VIPs; required if any port is published in Ingress mode.
	SNAT netip.Addr
}

// Update is a change to the State a Balancer last applied, naming only what changed: VIPs and
// Ports are added or replace the one with the same address (a VIP) or key (a port);
// RemovedVIPs and RemovedPorts are taken out (a key that is not there is no error). Removals
// apply first, so one Update can move a VIP or a port from one service to another. SNAT is not
// changed by an Update: a new SNAT takes a Sync.
type Update struct {
	VIPs         []VIP
	RemovedVIPs  []netip.Addr
	Ports        []Port
	RemovedPorts []PortKey
}

// Empty reports whether u changes nothing.
func (u Update) Empty() bool {
	return len(u.VIPs) == 0 && len(u.RemovedVIPs) == 0 && len(u.Ports) == 0 && len(u.RemovedPorts) == 0
}

// Changes is what one Sync, Update or Repair changed in the kernel.
type Changes struct {
	Added int // VIPs and ports that were programmed anew
	// Updated counts the VIPs and ports whose programming was corrected or replaced, and the
	// shared rules and sets replaced (the SNAT rules after a change of State.SNAT, a rule or set
	// element edited by hand).
	Updated int
	Removed int // VIPs and ports taken out
	Rebuilt bool
}

// Changed reports whether anything was sent to the kernel.
func (c Changes) Changed() bool { return c != Changes{} }

// Difference is one way the kernel differs from a State.
type Difference struct {
	Kind    string // "vip", "port" or "table"
	Key     string // the VIP ("10.0.0.5"), the port ("tcp/8080") or the table object
	Service string // the service ID, when known
	Want    string // what the State asks for, for people (e.g. the backend list)
	Got     string // what the kernel holds
}

func (d Difference) String() string {
	s := d.Kind + " " + d.Key
	if d.Service != "" {
		s += " (service " + d.Service + ")"
	}
	return s + ": want " + d.Want + ", got " + d.Got
}

// Balancer programs one node's service load balancing. Every method works in the network
// namespace of the calling thread (the nftables backend: of its first call, whose sockets it
// keeps), which must be the node's each time; calls from several goroutines are serialized.
type Balancer interface {
	// Backend names the implementation: "nftables" or "ipvs".
	Backend() string
	// Sync makes the kernel hold exactly s. It compares s with what this Balancer last applied
	// (it does not read the kernel) and sends only the VIPs and ports that changed, in one
	// atomic batch: one endpoint change touches one service's objects. The first call, and the
	// first after a failure or after Repair found the table gone, programs everything in one
	// batch. An invalid s is refused with a *FieldError and changes nothing.
	Sync(s State) (Changes, error)
	// Update applies u to the State the last Sync, Update or Repair applied, checking and sending only
	// the VIPs and ports u names, in one atomic batch: its cost follows the size of u, not of
	// the State. u is refused with a *FieldError (fields named as in Update: "VIPs[0].Addr")
	// when the State it would make is invalid, e.g. a VIP that is another VIP's backend, or a
	// VIP or port that another service holds and u does not remove; nothing changes then.
	// Before the first Sync, after Remove, and after a Sync, Update or Repair that failed in
	// the kernel (one refused as invalid changes nothing, and the applied State stands), it
	// fails with ErrNoState: the caller Syncs the whole State instead.
	Update(u Update) (Changes, error)
	// Repair reads the kernel and, in one batch, fixes every VIP and port whose programming
	// differs from s, also when the table was deleted or flushed by hand.
	Repair(s State) (Changes, error)
	// Inspect compares the kernel with s without changing anything; empty means clean.
	Inspect(s State) ([]Difference, error)
	// Read returns what the kernel holds now.
	Read() (State, error)
	// Remove deletes everything this Balancer owns in the kernel.
	Remove() error
}

// ErrNoState is Update's error when the Balancer holds no State it applied to change: the
// caller must Sync the whole State.
var ErrNoState = errors.New("mesh: no state applied to update; Sync the whole state")

// ErrInvalid matches every *FieldError with errors.Is.
var ErrInvalid = errors.New("invalid load-balancing state")

// FieldError is a refused input: which field (as in the Go types, indexes included:
// "VIPs[3].Backends[0]", "Ports[1].Published", "SNAT") and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return "mesh: invalid " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// MaxLabel is the longest Service, Name or Network a State may carry: backends keep them in the
// kernel next to the objects they program (nftables rule comments hold 256 bytes).
const MaxLabel = 64

// Validate checks s: every address IPv4 and usable, no VIP or port twice, no backend twice, every
// port with a protocol, a published port, a mode and backend ports, and SNAT when a port is
// published in Ingress mode. The error is a *FieldError naming the first field refused.
func (s State) Validate() error {
	// Keyed by the 4 bytes: every address is checked to be IPv4 first, and those hash faster
	// than netip.Addr over thousands of VIPs.
	vips := make(map[[4]byte]int, len(s.VIPs))
	for i := range s.VIPs {
		v := &s.VIPs[i]
		if err := validateVIP(i, v); err != nil {
			return err
		}
		if j, dup := vips[v.Addr.As4()]; dup {
			return invalid(fmt.Sprintf("VIPs[%d].Addr", i), "%s is also VIPs[%d]", v.Addr, j)
		}
		vips[v.Addr.As4()] = i
	}
	for i := range s.VIPs {
		for j, b := range s.VIPs[i].Backends {
			if k, isVIP := vips[b.As4()]; isVIP {
				return invalid(fmt.Sprintf("VIPs[%d].Backends[%d]", i, j), "%s is the VIP of VIPs[%d]", b, k)
			}
		}
	}
	type published struct {
		protocol Protocol
		port     uint16
	}
	ports := make(map[published]int, len(s.Ports))
	ingress := -1
	for i := range s.Ports {
		p := &s.Ports[i]
		if err := validatePort(i, p); err != nil {
			return err
		}
		key := published{p.Protocol, p.Published}
		if j, dup := ports[key]; dup {
			return invalid(fmt.Sprintf("Ports[%d]", i), "%s is also published by Ports[%d]", p.Key(), j)
		}
		ports[key] = i
		if p.Mode == Ingress && ingress < 0 {
			ingress = i
		}
	}
	if !s.SNAT.IsValid() {
		if ingress >= 0 {
			return invalid("SNAT", "required by the ingress port Ports[%d] (%s)", ingress, s.Ports[ingress].Key())
		}
		return nil
	}
	if why := unicastProblem(s.SNAT); why != "" {
		return invalid("SNAT", "%s", why)
	}
	return nil
}

// validateVIP checks one VIP on its own. Field names are only formatted for an error: Validate
// runs on every Sync, over thousands of VIPs.
func validateVIP(i int, v *VIP) error {
	field := func(sub string) string { return fmt.Sprintf("VIPs[%d]%s", i, sub) }
	if err := validateLabels(field, v.Service, v.Name, v.Network); err != nil {
		return err
	}
	if why := unicastProblem(v.Addr); why != "" {
		return invalid(field(".Addr"), "%s", why)
	}
	for j, b := range v.Backends {
		if why := unicastProblem(b); why != "" {
			return invalid(field(fmt.Sprintf(".Backends[%d]", j)), "%s", why)
		}
	}
	if first, dup := duplicate(v.Backends); dup >= 0 {
		return invalid(field(fmt.Sprintf(".Backends[%d]", dup)), "%s is also Backends[%d]", v.Backends[dup], first)
	}
	return nil
}

func validatePort(i int, p *Port) error {
	field := func(sub string) string { return fmt.Sprintf("Ports[%d]%s", i, sub) }
	if err := validateLabels(field, p.Service, p.Name, ""); err != nil {
		return err
	}
	if p.Protocol != TCP && p.Protocol != UDP {
		return invalid(field(".Protocol"), "%s is not tcp or udp", p.Protocol)
	}
	if p.Published == 0 {
		return invalid(field(".Published"), "port 0")
	}
	if p.Mode != Ingress && p.Mode != Host {
		return invalid(field(".Mode"), "%s is not ingress or host", p.Mode)
	}
	for j, b := range p.Backends {
		if why := unicastProblem(b.Addr); why != "" {
			return invalid(field(fmt.Sprintf(".Backends[%d].Addr", j)), "%s", why)
		}
		if b.Port == 0 {
			return invalid(field(fmt.Sprintf(".Backends[%d].Port", j)), "port 0")
		}
	}
	if first, dup := duplicate(p.Backends); dup >= 0 {
		return invalid(field(fmt.Sprintf(".Backends[%d]", dup)), "%s is also Backends[%d]", p.Backends[dup], first)
	}
	return nil
}

// duplicate returns the indexes of the first value of list that occurs twice, or -1, -1.
func duplicate[T comparable](list []T) (first, dup int) {
	if len(list) <= 32 { // no allocation for the usual few backends
		for j := 1; j < len(list); j++ {
			for i := range j {
				if list[i] == list[j] {
					return i, j
				}
			}
		}
		return -1, -1
	}
	seen := make(map[T]int, len(list))
	for j, v := range list {
		if i, ok := seen[v]; ok {
			return i, j
		}
		seen[v] = j
	}
	return -1, -1
}

// validateLabels checks the service ID (required), name and network ID: the backends store them
// in the kernel as space-separated words.
func validateLabels(field func(string) string, service, name, network string) error {
	if service == "" {
		return invalid(field(".Service"), "empty")
	}
	for _, l := range []struct{ field, value string }{
		{".Service", service}, {".Name", name}, {".Network", network},
	} {
		if len(l.value) > MaxLabel {
			return invalid(field(l.field), "%d bytes, longer than %d", len(l.value), MaxLabel)
		}
		for _, r := range l.value {
			if r <= ' ' || r == '=' || r == '"' || r == 0x7f {
				return invalid(field(l.field), "%q holds a space, control character, '=' or '\"'", l.value)
			}
		}
	}
	return nil
}

// unicastProblem says why a is not a usable IPv4 unicast address, or "" when it is.
func unicastProblem(a netip.Addr) string {
	if a.Is4() { // the usual case, checked first: Validate runs over every backend on every Sync
		if b := a.As4(); b[0] != 0 && b[0] != 127 && b[0] < 224 {
			return ""
		}
	}
	switch {
	case !a.IsValid():
		return "missing"
	case a.Is4In6():
		return fmt.Sprintf("%s is IPv4-mapped IPv6; give the plain IPv4 address", a)
	case !a.Is4():
		return fmt.Sprintf("%s is not IPv4", a)
	case a.IsUnspecified():
		return "0.0.0.0 is not a host address"
	case a.IsLoopback():
		return fmt.Sprintf("%s is a loopback address", a)
	case a.IsMulticast():
		return fmt.Sprintf("%s is a multicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "255.255.255.255 is the broadcast address"
	}
	return ""
}
