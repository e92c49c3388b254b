package nft

// This file builds the table a State needs (desired). A backend keeps the slot it has in a hint
// — the kernel's table for Repair and Inspect, the last applied one for Sync — while it stays and
// the slot stays below the backend count, so a change of backends moves as few elements as it
// can and Hash selection keeps the clients of the other backends where they were; new backends
// fill the free slots in byte order. A Sync or Update reuses the objects of every VIP and port
// whose input has not changed since it was last applied, which keeps one change cheap among
// 10,000 VIPs.

import (
	"net/netip"
	"slices"

	"github.com/shoal/shoal/mesh"
)

// desired is the table the Balancer programs for s, which must be valid.
func (b *Balancer) desired(s mesh.State, hint *tableModel) *tableModel {
	m := newTableModel()
	m.exists = true
	m.base = b.rules.baseChains(b.table(), s.SNAT)
	for _, set := range setSpecs(b.table()) {
		m.sets[set.Name] = describeSet(set)
	}
	m.vips = make(map[netip.Addr]*objects, len(s.VIPs))
	backends := 0
	for _, v := range s.VIPs {
		backends += len(v.Backends)
	}
	m.hairpin, m.counted = make(map[addr4]int, backends), true
	users := map[int]int{}
	for _, v := range s.VIPs {
		m.vips[v.Addr] = b.vipFor(v, hint.vipObjects(v.Addr))
		users[len(v.Backends)]++
		for _, be := range v.Backends {
			m.hairpin[be.As4()]++
		}
	}
	m.addPicks(b.rules, pickVIPPrefix, users)
	users = map[int]int{}
	for _, p := range s.Ports {
		k := keyOf(p)
		m.ports[k] = b.portFor(p, hint.portObjects(k))
		users[len(p.Backends)]++
	}
	m.addPicks(b.rules, pickPortPrefix, users)
	return m
}

// vipFor returns the objects of v: old, the objects last built for the VIP, when they were
// built for the same input, else new ones that keep old's slots where they can.
func (b *Balancer) vipFor(v mesh.VIP, old *objects) *objects {
	if old != nil && sameVIP(old.input, v) {
		return old
	}
	return b.vipObjects(v, old)
}

// portFor is vipFor for a published port.
func (b *Balancer) portFor(p mesh.Port, old *objects) *objects {
	if old != nil && samePort(old.input, p) {
		return old
	}
	return b.portObjects(p, old)
}

func (m *tableModel) vipObjects(a netip.Addr) *objects {
	if m == nil {
		return nil
	}
	return m.vips[a]
}

func (m *tableModel) portObjects(k portKey) *objects {
	if m == nil {
		return nil
	}
	return m.ports[k]
}

// addPicks adds the pick chains for the backend counts, 0 aside, with the number of VIPs or
// ports of each count.
func (m *tableModel) addPicks(r rules, prefix string, users map[int]int) {
	for n, count := range users {
		if n > 0 {
			name := pickChain(prefix, n)
			m.picks[name] = []rule{r.pick(prefix, n)}
			m.pickUsers[name] = count
		}
	}
}

// vipObjects builds the objects of v, with the slots of hint's backends where they can stay.
func (b *Balancer) vipObjects(v mesh.VIP, hint *objects) *objects {
	v.Backends = slices.Clone(v.Backends)
	data := make([]string, len(v.Backends))
	for i, be := range v.Backends {
		data[i] = string(addrBytes(be))
	}
	return &objects{
		chain:    true,
		rules:    []rule{b.rules.vip(v)},
		verdict:  describeVerdictElem(vipChain(v.Addr)),
		listed:   true,
		backends: assignSlots(hint.slots(), data),
		input:    &v,
	}
}

// portObjects builds the objects of p, with the slots of hint's backends where they can stay.
func (b *Balancer) portObjects(p mesh.Port, hint *objects) *objects {
	p.Backends = slices.Clone(p.Backends)
	data := make([]string, len(p.Backends))
	for i, be := range p.Backends {
		data[i] = string(backendBytes(be))
	}
	return &objects{
		chain:    true,
		rules:    []rule{b.rules.port(p)},
		verdict:  describeVerdictElem(portChain(keyOf(p))),
		backends: assignSlots(hint.slots(), data),
		input:    &p,
	}
}

func (o *objects) slots() map[uint32]string {
	if o == nil {
		return nil
	}
	return o.backends
}

func sameVIP(input any, v mesh.VIP) bool {
	in, ok := input.(*mesh.VIP)
	return ok && in.Addr == v.Addr && in.Service == v.Service && in.Name == v.Name &&
		in.Network == v.Network && slices.Equal(in.Backends, v.Backends)
}

func samePort(input any, p mesh.Port) bool {
	in, ok := input.(*mesh.Port)
	return ok && in.Service == p.Service && in.Name == p.Name && in.Protocol == p.Protocol &&
		in.Published == p.Published && in.Mode == p.Mode && slices.Equal(in.Backends, p.Backends)
}

// assignSlots gives each of backends (encoded, distinct) a slot in 0..len-1: the slot it has in
// hint when that is below len, else a free one, filled in byte order.
func assignSlots(hint map[uint32]string, backends []string) map[uint32]string {
	n := uint32(len(backends))
	out := make(map[uint32]string, n)
	wanted := make(map[string]bool, n)
	for _, d := range backends {
		wanted[d] = true
	}
	placed := make(map[string]bool, n)
	for slot, d := range hint {
		if slot < n && wanted[d] && !placed[d] {
			out[slot] = d
			placed[d] = true
		}
	}
	rest := make([]string, 0, n-uint32(len(placed)))
	for _, d := range backends {
		if !placed[d] {
			rest = append(rest, d)
		}
	}
	slices.Sort(rest)
	for slot := uint32(0); slot < n; slot++ {
		if _, ok := out[slot]; !ok {
			out[slot], rest = rest[0], rest[1:]
		}
	}
	return out
}
