package nft

// This file owns tableModel: the table's content in a form that can be built from a State
// (desired), read from the kernel (read.go) and compared (plan.go, inspect.go). A VIP's and a
// published port's kernel objects are grouped per VIP and per port, so a difference is always
// one service's.

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/shoal/shoal/mesh"
)

// tableModel is the content of the table.
type tableModel struct {
	exists bool
	base   map[string]baseChain // the hooked chains, by name
	sets   map[string]string    // describeSet of each set, by name
	// picks are the rules of the chains that pick a backend, by chain name ("pick-vip-3").
	picks map[string][]rule
	// pickUsers counts the VIPs or ports that go to each pick chain, by chain name (desired
	// only): an Update deletes a pick chain when its count drops to 0.
	pickUsers map[string]int
	// foreign are the chains and sets in the table that this package does not make.
	foreign []string
	vips    map[netip.Addr]*objects
	ports   map[portKey]*objects
	// hairpin are the elements of the hairpin set, by backend address: in a desired table, the
	// number of VIPs that list the address as a backend (the element goes when the last of them
	// drops it); in a table read, 1.
	hairpin map[addr4]int
	// counted says hairpin counts every VIP of the table (a table desired has): between two
	// such tables only the backends of VIPs that differ can differ.
	counted bool
}

// addr4 is an IPv4 address as the hairpin set's elements hold it, twice.
type addr4 [4]byte

// addr4Of returns the address of a backend map element's data (4 bytes).
func addr4Of(data string) addr4 {
	var a addr4
	copy(a[:], data)
	return a
}

// objects is what the table holds for one VIP or one published port.
type objects struct {
	chain   bool   // its chain exists
	rules   []rule // the rules of its chain
	verdict string // its element in the vips or ports verdict map ("goto vip-…"); "" when missing
	listed  bool   // VIPs only: its element in vip-addrs
	// backends are its elements in vip-backends or port-backends: slot → data (address, or
	// address and port, as bytes).
	backends map[uint32]string
	// input is the *mesh.VIP or *mesh.Port the objects were built for (desired only): a Sync
	// given the same again reuses them.
	input any
}

func newTableModel() *tableModel {
	return &tableModel{
		base:      map[string]baseChain{},
		sets:      map[string]string{},
		picks:     map[string][]rule{},
		pickUsers: map[string]int{},
		vips:      map[netip.Addr]*objects{},
		ports:     map[portKey]*objects{},
		hairpin:   map[addr4]int{},
	}
}

func (o *objects) equal(p *objects) bool {
	return o.chain == p.chain && rulesEqual(o.rules, p.rules) && o.verdict == p.verdict &&
		o.listed == p.listed && maps.Equal(o.backends, p.backends)
}

// vip returns the objects of a, creating an empty entry.
func (m *tableModel) vip(a netip.Addr) *objects {
	o := m.vips[a]
	if o == nil {
		o = &objects{backends: map[uint32]string{}}
		m.vips[a] = o
	}
	return o
}

// port returns the objects of k, creating an empty entry.
func (m *tableModel) port(k portKey) *objects {
	o := m.ports[k]
	if o == nil {
		o = &objects{backends: map[uint32]string{}}
		m.ports[k] = o
	}
	return o
}

// setSpecs are the table's sets, as they are created.
func setSpecs(table *nftables.Table) []*nftables.Set {
	// A backend slot is a 32-bit integer in host order. nft cannot show integers of unknown
	// length in a concatenation; the mark type is one of 4 bytes in host order.
	slot := nftables.TypeMark
	return []*nftables.Set{
		{Table: table, Name: setVIPs, IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict},
		{Table: table, Name: setVIPAddrs, KeyType: nftables.TypeIPAddr},
		{Table: table, Name: setVIPBackends, IsMap: true, Concatenation: true,
			KeyType:  nftables.MustConcatSetType(nftables.TypeIPAddr, slot),
			DataType: nftables.TypeIPAddr},
		{Table: table, Name: setPorts, IsMap: true, Concatenation: true,
			KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
			DataType: nftables.TypeVerdict},
		{Table: table, Name: setPortBackends, IsMap: true, Concatenation: true,
			KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService, slot),
			DataType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)},
		{Table: table, Name: setHairpin, Concatenation: true,
			KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr)},
	}
}

func compareBackends(a, b mesh.Backend) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}

func describeVerdictElem(chain string) string { return describeVerdict(expr.VerdictGoto, chain) }

// state is what m programs, as a State: VIPs, ports and backends in order, service labels from
// the comments of their chains' rules. A VIP or port whose map element does not go to its chain
// is listed without backends: nothing reaches them.
func (m *tableModel) state() mesh.State {
	var s mesh.State
	for _, a := range slices.SortedFunc(maps.Keys(m.vips), netip.Addr.Compare) {
		o := m.vips[a]
		v := mesh.VIP{Addr: a}
		if l, ok := o.labels("vip"); ok {
			v.Service, v.Name, v.Network = l["service"], l["name"], l["network"]
		}
		// A VIP the vips map does not send to its chain balances over nothing, whatever
		// backend elements it still has.
		wired := o.chain && o.verdict == describeVerdictElem(vipChain(a))
		for _, slot := range slices.Sorted(maps.Keys(o.backends)) {
			if be, err := parseAddr([]byte(o.backends[slot])); err == nil && wired {
				v.Backends = append(v.Backends, be)
			}
		}
		slices.SortFunc(v.Backends, netip.Addr.Compare)
		s.VIPs = append(s.VIPs, v)
	}
	for _, k := range slices.SortedFunc(maps.Keys(m.ports), comparePortKeys) {
		o := m.ports[k]
		p := mesh.Port{Protocol: k.proto, Published: k.port}
		if l, ok := o.labels("port"); ok {
			p.Service, p.Name = l["service"], l["name"]
			switch l["mode"] {
			case mesh.Ingress.String():
				p.Mode = mesh.Ingress
			case mesh.Host.String():
				p.Mode = mesh.Host
			}
		}
		wired := o.chain && o.verdict == describeVerdictElem(portChain(k))
		for _, slot := range slices.Sorted(maps.Keys(o.backends)) {
			if be, err := parseBackend([]byte(o.backends[slot])); err == nil && wired {
				p.Backends = append(p.Backends, be)
			}
		}
		slices.SortFunc(p.Backends, compareBackends)
		s.Ports = append(s.Ports, p)
	}
	s.SNAT = snatOf(m.base[chainPostrouting].rules)
	return s
}

// labels returns the labels of the first rule of the chain with a comment of kind.
func (o *objects) labels(kind string) (labels, bool) {
	for _, r := range o.rules {
		if k, l, ok := parseComment(r.comment); ok && k == kind {
			return l, true
		}
	}
	return nil, false
}

func comparePortKeys(a, b portKey) int {
	if c := cmp.Compare(a.proto, b.proto); c != 0 {
		return c
	}
	return cmp.Compare(a.port, b.port)
}
