package ipvs

// This file owns the firewall marks: their layout (a kind in bits 24..27, an ID below) and their
// allocation to VIPs and ports. A VIP or port keeps its mark across Syncs and agent restarts
// (the marks are read back from the mark table), so its IPVS service — and the connections IPVS
// tracks for it — survive every change but a change of kind.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/shoal/shoal/mesh"
)

// Mark layout. IPVS matches a fwmark service on the whole packet mark, so a mark is exactly
// kind | ID; the postrouting chain tells ingress connections by their kind.
const (
	kindMask    uint32 = 0x0f00_0000
	idMask      uint32 = 0x00ff_ffff
	kindVIP     uint32 = 0x0100_0000 // a VIP with backends
	kindHost    uint32 = 0x0200_0000 // a host-mode port with backends
	kindIngress uint32 = 0x0400_0000 // an ingress port with backends: SNATed
	// RejectMark marks a connection to a VIP or port without backends: it has no IPVS service
	// and the input chain refuses it.
	RejectMark uint32 = 0x0800_0000
)

// ours reports whether an IPVS fwmark service with mark m belongs to this package.
func ours(m uint32) bool {
	k := m & kindMask
	return (k == kindVIP || k == kindHost || k == kindIngress) && m&idMask != 0 && m&^(kindMask|idMask) == 0
}

func describeMark(m uint32) string { return fmt.Sprintf("0x%08x", m) }

// portKey identifies a published port.
type portKey struct {
	proto mesh.Protocol
	port  uint16
}

func (k portKey) String() string { return fmt.Sprintf("%s/%d", k.proto, k.port) }

func keyOf(p mesh.Port) portKey { return portKey{proto: p.Protocol, port: p.Published} }

func comparePortKeys(a, b portKey) int {
	return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port))
}

// kindOfVIP and kindOfPort are the kinds of mark a VIP or port needs; RejectMark without
// backends.
func kindOfVIP(v mesh.VIP) uint32 {
	if len(v.Backends) == 0 {
		return RejectMark
	}
	return kindVIP
}

func kindOfPort(p mesh.Port) uint32 {
	switch {
	case len(p.Backends) == 0:
		return RejectMark
	case p.Mode == mesh.Ingress:
		return kindIngress
	}
	return kindHost
}

// marks are the marks of a State's VIPs and ports.
type marks struct {
	vips  map[netip.Addr]uint32
	ports map[portKey]uint32
}

// allocate gives every VIP and port of s (valid) a mark: RejectMark without backends, else the
// mark it has in prev when that is of the right kind and not taken, else the lowest ID of its
// kind that neither s nor prev uses. Keys are visited in order, so the result depends on s and
// prev alone.
func allocate(s mesh.State, prev marks) (marks, error) {
	out := marks{vips: make(map[netip.Addr]uint32, len(s.VIPs)), ports: make(map[portKey]uint32, len(s.Ports))}
	kinds := map[any]uint32{}
	for _, v := range s.VIPs {
		kinds[v.Addr] = kindOfVIP(v)
	}
	for _, p := range s.Ports {
		kinds[keyOf(p)] = kindOfPort(p)
	}
	vips := make([]netip.Addr, 0, len(s.VIPs))
	for _, v := range s.VIPs {
		vips = append(vips, v.Addr)
	}
	slices.SortFunc(vips, netip.Addr.Compare)
	ports := make([]portKey, 0, len(s.Ports))
	for _, p := range s.Ports {
		ports = append(ports, keyOf(p))
	}
	slices.SortFunc(ports, comparePortKeys)

	taken := map[uint32]bool{}
	keep := func(kind, old uint32) bool {
		return kind != RejectMark && old&kindMask == kind && ours(old) && !taken[old]
	}
	// First every key that keeps its mark, then the others: a key never takes a mark another
	// key still holds.
	for _, a := range vips {
		if old, ok := prev.vips[a]; ok && keep(kinds[a], old) {
			out.vips[a], taken[old] = old, true
		}
	}
	for _, k := range ports {
		if old, ok := prev.ports[k]; ok && keep(kinds[k], old) {
			out.ports[k], taken[old] = old, true
		}
	}
	// A new key never gets a mark prev gives another: its IPVS service is only deleted after
	// the mark table stops marking for it.
	for _, m := range prev.vips {
		taken[m] = true
	}
	for _, m := range prev.ports {
		taken[m] = true
	}
	next := map[uint32]uint32{kindVIP: 1, kindHost: 1, kindIngress: 1}
	fresh := func(kind uint32) (uint32, error) {
		if kind == RejectMark {
			return RejectMark, nil
		}
		for id := next[kind]; id <= idMask; id++ {
			if m := kind | id; !taken[m] {
				taken[m], next[kind] = true, id+1
				return m, nil
			}
		}
		return 0, fmt.Errorf("no free firewall mark of kind %#x", kind)
	}
	for _, a := range vips {
		if _, ok := out.vips[a]; !ok {
			m, err := fresh(kinds[a])
			if err != nil {
				return marks{}, err
			}
			out.vips[a] = m
		}
	}
	for _, k := range ports {
		if _, ok := out.ports[k]; !ok {
			m, err := fresh(kinds[k])
			if err != nil {
				return marks{}, err
			}
			out.ports[k] = m
		}
	}
	return out, nil
}

// markCursor is, for each kind, the ID the search for a fresh mark starts from: past the
// highest ID the applied model uses, so that Update finds one without looking at every mark.
type markCursor map[uint32]uint32

// cursorOf returns the cursor just past the highest ID of each kind among the services of m.
func cursorOf(m *model) markCursor {
	c := markCursor{kindVIP: 1, kindHost: 1, kindIngress: 1}
	for mark := range m.services {
		if kind, id := mark&kindMask, mark&idMask; id >= c[kind] {
			c[kind] = id + 1
		}
	}
	return c
}

// fresh returns the first mark of kind from the cursor up, wrapping past the last ID, that taken
// does not hold, and moves the cursor past it.
func (c markCursor) fresh(kind uint32, taken func(uint32) bool) (uint32, error) {
	start := max(c[kind], 1)
	for i := range idMask {
		id := (start-1+i)%idMask + 1
		if m := kind | id; !taken(m) {
			c[kind] = id + 1
			return m, nil
		}
	}
	return 0, fmt.Errorf("no free firewall mark of kind %#x", kind)
}
