package ipvs

// This file owns model: what the kernel holds for the Balancer — the mark table's frame, the
// marks of VIPs and ports with their labels, and the IPVS fwmark services — in a form that is
// built from a State (desired), read from the kernel (read.go) and compared (plan.go,
// inspect.go); and the way back from a model to a State (Read).

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/shoal/shoal/mesh"
)

// model is what the kernel holds, or must hold.
type model struct {
	frame frame
	vips  map[netip.Addr]element
	ports map[portKey]element
	// services are this package's IPVS fwmark services, by mark.
	services map[uint32]service
}

// frame is the mark table without its elements: the sets and chains, described.
type frame struct {
	exists bool
	sets   map[string]string // set name → description
	chains map[string]string // chain name → hook and rules, described
	snat   netip.Addr        // the SNAT address of the postrouting rule, for Read
}

func (f frame) equal(g frame) bool {
	return f.exists == g.exists && maps.Equal(f.sets, g.sets) && maps.Equal(f.chains, g.chains)
}

// element is one element of a mark map: the mark and the labels of its VIP or port.
type element struct {
	mark    uint32
	comment string
}

func (e element) String() string {
	return "mark " + describeMark(e.mark) + ` "` + e.comment + `"`
}

// service is one IPVS fwmark service.
type service struct {
	sched string
	// dests are its destinations, sorted; a VIP's have port 0: the packet's own port.
	dests []mesh.Backend
}

func (s service) equal(t service) bool { return s.sched == t.sched && slices.Equal(s.dests, t.dests) }

func (s service) String() string {
	parts := make([]string, len(s.dests))
	for i, d := range s.dests {
		parts[i] = d.Addr.String()
		if d.Port != 0 {
			parts[i] = d.String()
		}
	}
	return "ipvs " + s.sched + " backends " + strings.Join(parts, " ")
}

func newModel() *model {
	return &model{
		frame:    frame{sets: map[string]string{}, chains: map[string]string{}},
		vips:     map[netip.Addr]element{},
		ports:    map[portKey]element{},
		services: map[uint32]service{},
	}
}

// marks returns the marks m gives VIPs and ports: the allocation to keep.
func (m *model) marks() marks {
	out := marks{vips: map[netip.Addr]uint32{}, ports: map[portKey]uint32{}}
	if m == nil {
		return out
	}
	for a, e := range m.vips {
		out.vips[a] = e.mark
	}
	for k, e := range m.ports {
		out.ports[k] = e.mark
	}
	return out
}

// desired is the model of s (valid), keeping the marks of prev where it can.
func (b *Balancer) desired(s mesh.State, prev *model) (*model, error) {
	mk, err := allocate(s, prev.marks())
	if err != nil {
		return nil, err
	}
	m := newModel()
	m.frame = b.markTable().frame(s.SNAT)
	sched := b.cfg.scheduler()
	for _, v := range s.VIPs {
		m.putVIP(v, mk.vips[v.Addr], sched)
	}
	for _, p := range s.Ports {
		m.putPort(p, mk.ports[keyOf(p)], sched)
	}
	return m, nil
}

// putVIP adds v to m with mark and, unless the mark is RejectMark, its IPVS service.
func (m *model) putVIP(v mesh.VIP, mark uint32, sched string) {
	m.vips[v.Addr] = element{mark: mark, comment: vipComment(v)}
	if mark == RejectMark {
		return
	}
	dests := make([]mesh.Backend, len(v.Backends))
	for i, a := range v.Backends {
		dests[i] = mesh.Backend{Addr: a}
	}
	slices.SortFunc(dests, compareBackends)
	m.services[mark] = service{sched: sched, dests: dests}
}

// putPort adds p to m with mark and, unless the mark is RejectMark, its IPVS service.
func (m *model) putPort(p mesh.Port, mark uint32, sched string) {
	m.ports[keyOf(p)] = element{mark: mark, comment: portComment(p)}
	if mark == RejectMark {
		return
	}
	dests := slices.Clone(p.Backends)
	slices.SortFunc(dests, compareBackends)
	m.services[mark] = service{sched: sched, dests: dests}
}

func compareBackends(a, b mesh.Backend) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// Comments keep a VIP's or port's labels next to its mark: "shoal vip service=… name=… …".

func vipComment(v mesh.VIP) string {
	return fmt.Sprintf("shoal vip service=%s name=%s network=%s", v.Service, v.Name, v.Network)
}

func portComment(p mesh.Port) string {
	return fmt.Sprintf("shoal port service=%s name=%s mode=%s", p.Service, p.Name, p.Mode)
}

// parseComment returns the labels of a comment written by vipComment or portComment.
func parseComment(c string) map[string]string {
	words := strings.Fields(c)
	if len(words) < 2 || words[0] != "shoal" {
		return nil
	}
	l := map[string]string{}
	for _, w := range words[2:] {
		if k, v, ok := strings.Cut(w, "="); ok {
			l[k] = v
		}
	}
	return l
}

// state is what m programs, as a State: VIPs, ports and backends in order.
func (m *model) state() mesh.State {
	s := mesh.State{SNAT: m.frame.snat}
	for _, a := range slices.SortedFunc(maps.Keys(m.vips), netip.Addr.Compare) {
		e := m.vips[a]
		l := parseComment(e.comment)
		v := mesh.VIP{Service: l["service"], Name: l["name"], Network: l["network"], Addr: a}
		for _, d := range m.services[e.mark].dests {
			v.Backends = append(v.Backends, d.Addr)
		}
		s.VIPs = append(s.VIPs, v)
	}
	for _, k := range slices.SortedFunc(maps.Keys(m.ports), comparePortKeys) {
		e := m.ports[k]
		l := parseComment(e.comment)
		p := mesh.Port{Service: l["service"], Name: l["name"], Protocol: k.proto, Published: k.port}
		switch {
		case e.mark&kindMask == kindIngress || (e.mark == RejectMark && l["mode"] == mesh.Ingress.String()):
			p.Mode = mesh.Ingress
		case e.mark&kindMask == kindHost || l["mode"] == mesh.Host.String():
			p.Mode = mesh.Host
		}
		p.Backends = slices.Clone(m.services[e.mark].dests)
		s.Ports = append(s.Ports, p)
	}
	return s
}
