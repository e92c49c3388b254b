package ipvs

// This file implements Update. It checks the Update against the mesh.Index of the applied State,
// then builds two small models holding only the VIPs and ports the Update names — their mark
// elements and IPVS services as the applied model has them and as they must become — over the
// applied mark table's frame, so that makePlan turns them into the changes of those services and
// elements alone, applied in Sync's order. A VIP or port keeps its mark as with Sync; a fresh one
// is found from a cursor past the applied marks, not by looking at every mark.

import (
	"maps"

	"github.com/shoal/shoal/mesh"
)

// Update applies u to the State the last Sync, Update or Repair applied (see mesh.Balancer),
// changing the IPVS services and mark elements of the VIPs and ports u names alone, in the order
// Sync changes them. IPVS has no transactions: when a change fails, the kernel may hold part of
// u, and the next Sync reads the kernel back, as after a failed Sync.
func (b *Balancer) Update(u mesh.Update) (mesh.Changes, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.applied == nil {
		return mesh.Changes{}, mesh.ErrNoState
	}
	if err := b.index.Check(u); err != nil {
		return mesh.Changes{}, err
	}
	c, err := b.touched(u)
	if err != nil {
		return mesh.Changes{}, err
	}
	p := makePlan(c.got, c.want)
	if !p.empty() {
		if err := b.apply(p); err != nil {
			b.forget()
			return mesh.Changes{}, err
		}
	}
	b.applied.commit(c)
	b.index.Apply(u)
	b.cursor = c.cursor
	return p.changes, nil
}

// change is the part of the applied model one Update touches, as it is (got) and as it must be
// (want), and the mark cursor after the marks the Update takes.
type change struct {
	got, want *model
	cursor    markCursor
}

// touched returns the change u makes to the applied model; u was checked.
func (b *Balancer) touched(u mesh.Update) (change, error) {
	applied := b.applied
	c := change{got: applied.frameOnly(), want: applied.frameOnly(), cursor: maps.Clone(b.cursor)}
	taken := map[uint32]bool{}
	// markFor keeps the mark old gives the key when it is of the kind the key needs now, else
	// takes a fresh one: never one the applied model gives another key, whose service is
	// only deleted after the mark table stops marking for it.
	markFor := func(kind uint32, old element, had bool) (uint32, error) {
		switch {
		case kind == RejectMark:
			return RejectMark, nil
		case had && old.mark&kindMask == kind && ours(old.mark):
			return old.mark, nil
		}
		m, err := c.cursor.fresh(kind, func(m uint32) bool {
			_, used := applied.services[m]
			return used || taken[m]
		})
		taken[m] = true
		return m, err
	}
	sched := b.cfg.scheduler()
	for _, a := range u.RemovedVIPs {
		if e, ok := applied.vips[a]; ok {
			c.got.vips[a] = e
			c.got.copyService(applied, e.mark)
		}
	}
	for _, v := range u.VIPs {
		old, had := applied.vips[v.Addr]
		if had {
			c.got.vips[v.Addr] = old
			c.got.copyService(applied, old.mark)
		}
		mark, err := markFor(kindOfVIP(v), old, had)
		if err != nil {
			return change{}, err
		}
		c.want.putVIP(v, mark, sched)
	}
	for _, mk := range u.RemovedPorts {
		k := portKey{proto: mk.Protocol, port: mk.Published}
		if e, ok := applied.ports[k]; ok {
			c.got.ports[k] = e
			c.got.copyService(applied, e.mark)
		}
	}
	for _, p := range u.Ports {
		old, had := applied.ports[keyOf(p)]
		if had {
			c.got.ports[keyOf(p)] = old
			c.got.copyService(applied, old.mark)
		}
		mark, err := markFor(kindOfPort(p), old, had)
		if err != nil {
			return change{}, err
		}
		c.want.putPort(p, mark, sched)
	}
	return c, nil
}

// frameOnly returns a model with m's frame, shared with m, and no elements or services.
func (m *model) frameOnly() *model {
	f := newModel()
	f.frame = m.frame
	return f
}

// copyService copies the IPVS service of mark from m, if it has one.
func (m *model) copyService(from *model, mark uint32) {
	if svc, ok := from.services[mark]; ok {
		m.services[mark] = svc
	}
}

// commit makes m, the applied model, hold c's want, once c's plan is applied.
func (m *model) commit(c change) {
	for a, e := range c.got.vips {
		delete(m.vips, a)
		delete(m.services, e.mark)
	}
	for k, e := range c.got.ports {
		delete(m.ports, k)
		delete(m.services, e.mark)
	}
	maps.Copy(m.vips, c.want.vips)
	maps.Copy(m.ports, c.want.ports)
	maps.Copy(m.services, c.want.services)
}
