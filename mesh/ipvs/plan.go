package ipvs

// This file turns the difference between two models into a plan: the IPVS services and
// destinations to create, change and delete, and one batch of mark table changes — only for
// the VIPs and ports that differ. A mark table whose frame (sets, hooked chains, the SNAT
// address) differs is rebuilt in its batch; it holds two maps, not a chain per service.

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/shoal/shoal/mesh"
)

// plan is everything one Sync or Repair changes.
type plan struct {
	table    tableChanges
	services serviceChanges
	changes  mesh.Changes
	want     *model
}

func (p *plan) empty() bool { return p.table.empty() && p.services.empty() }

func makePlan(got, want *model) *plan {
	p := &plan{want: want, services: serviceChanges{
		create: map[uint32]service{}, resched: map[uint32]string{},
		addDests: map[uint32][]mesh.Backend{}, delDests: map[uint32][]mesh.Backend{},
	}}
	p.table.rebuild = !got.frame.equal(want.frame)
	p.changes.Rebuilt = p.table.rebuild && !got.frame.exists
	if p.table.rebuild && got.frame.exists {
		p.changes.Updated++ // its chains replaced: a new SNAT address, or edited by hand
	}

	for _, a := range sortedKeys(union(got.vips, want.vips), netip.Addr.Compare) {
		del, add := diffElement(p, got, want, got.vips, want.vips, a)
		if del {
			p.table.delVIPs = append(p.table.delVIPs, a)
		}
		if add {
			p.table.addVIPs = append(p.table.addVIPs, a)
		}
	}
	for _, k := range sortedKeys(union(got.ports, want.ports), comparePortKeys) {
		del, add := diffElement(p, got, want, got.ports, want.ports, k)
		if del {
			p.table.delPorts = append(p.table.delPorts, k)
		}
		if add {
			p.table.addPorts = append(p.table.addPorts, k)
		}
	}

	for _, mark := range sortedMarks(union(got.services, want.services)) {
		g, had := got.services[mark]
		w, wanted := want.services[mark]
		switch {
		case !wanted:
			p.services.remove = append(p.services.remove, mark)
		case !had:
			p.services.create[mark] = w
		default:
			if g.sched != w.sched {
				p.services.resched[mark] = w.sched
			}
			if add := missing(w.dests, g.dests); len(add) > 0 {
				p.services.addDests[mark] = add
			}
			if del := missing(g.dests, w.dests); len(del) > 0 {
				p.services.delDests[mark] = del
			}
		}
	}
	return p
}

// diffElement compares one VIP's or port's element and service, counts the change, and says
// whether its element must be deleted and (re)added.
func diffElement[K comparable](p *plan, got, want *model, g, w map[K]element, k K) (del, add bool) {
	ge, had := g[k]
	we, wanted := w[k]
	switch {
	case !had && wanted:
		p.changes.Added++
	case had && !wanted:
		p.changes.Removed++
	case had && wanted && (ge != we || !got.services[ge.mark].equal(want.services[we.mark])):
		p.changes.Updated++
	}
	if p.table.rebuild {
		return false, wanted // the rebuilt table gets every element of want
	}
	return had && (!wanted || ge != we), wanted && (!had || ge != we)
}

// missing returns the backends of a that b lacks.
func missing(a, b []mesh.Backend) []mesh.Backend {
	var out []mesh.Backend
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func union[K comparable, V any](a, b map[K]V) map[K]bool {
	u := make(map[K]bool, len(a)+len(b))
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

func sortedKeys[K comparable](m map[K]bool, compare func(K, K) int) []K {
	return slices.SortedFunc(maps.Keys(m), compare)
}

func sortedMarks[V any](m map[uint32]V) []uint32 { return slices.Sorted(maps.Keys(m)) }

func sortBackends(bs []mesh.Backend) { slices.SortFunc(bs, compareBackends) }
