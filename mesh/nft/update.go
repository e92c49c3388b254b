package nft

// This file implements Update. It checks the Update against the mesh.Index of the applied State,
// then builds two small tableModels holding only what the Update touches — the objects of the
// VIPs and ports it names, and the pick chains whose number of users it changes — as the applied
// table has them and as they must become. Both carry the applied table's frame (hooked chains,
// sets), so plan turns them into a piecewise batch of those objects alone, and the applied table
// is then changed in place. Nothing here visits every VIP or port: one endpoint change costs the
// same among 10 or 10,000 services.

import (
	"errors"
	"fmt"
	"maps"

	"github.com/shoal/shoal/mesh"
)

// Update applies u to the State the last Sync, Update or Repair applied (see mesh.Balancer),
// sending one batch with the objects of the VIPs and ports u names; a backend keeps its slot, as
// with Sync. When the kernel refuses that batch (the table was changed by hand), the table is
// rebuilt from the applied State with u applied, in a second batch, and Changes.Rebuilt is set.
func (b *Balancer) Update(u mesh.Update) (mesh.Changes, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.applied == nil {
		return mesh.Changes{}, mesh.ErrNoState
	}
	if err := b.index.Check(u); err != nil {
		return mesh.Changes{}, err
	}
	c := b.touched(u)
	bt := plan(c.got, c.want)
	if bt.rebuild {
		// Not reached: the two models share the applied frame, which plan never rebuilds from;
		// a rebuild from them would leave only the touched objects in the table.
		return mesh.Changes{}, fmt.Errorf("update of table ip %s: a piecewise change was planned as a rebuild", b.cfg.Table)
	}
	if !bt.empty() {
		if err := b.send(bt); err != nil {
			return b.rebuildWith(u, err)
		}
	}
	b.applied.commit(c)
	b.index.Apply(u)
	return bt.changes, nil
}

// rebuildWith rebuilds the table from the applied State with u applied, after the kernel refused
// u's piecewise batch.
func (b *Balancer) rebuildWith(u mesh.Update, refused error) (mesh.Changes, error) {
	b.index.Apply(u)
	ch, err := b.apply(rebuildBatch(b.desired(b.index.State(), b.applied)))
	if err != nil {
		return mesh.Changes{}, errors.Join(refused, fmt.Errorf("then rebuilding it: %w", err))
	}
	return ch, nil
}

// change is the part of the applied table one Update touches: the objects of the VIPs and ports
// it names and the pick chains whose users it changes, as they are (got) and as they must be
// (want), and by how much the users of each of those pick chains change.
type change struct {
	got, want *tableModel
	pickUsers map[pick]int
	// hairpinUsers is by how much the number of VIPs listing each backend address changes.
	hairpinUsers map[addr4]int
}

// pick names a pick chain: its prefix and backend count.
type pick struct {
	prefix string
	n      int
}

func (p pick) chain() string { return pickChain(p.prefix, p.n) }

// touched returns the change u makes to the applied table; u was checked.
func (b *Balancer) touched(u mesh.Update) change {
	applied := b.applied
	c := change{got: applied.frame(), want: applied.frame(), pickUsers: map[pick]int{}, hairpinUsers: map[addr4]int{}}
	for _, a := range u.RemovedVIPs {
		if o := applied.vips[a]; o != nil {
			c.got.vips[a] = o
		}
	}
	for _, v := range u.VIPs {
		old := applied.vips[v.Addr]
		if old != nil {
			c.got.vips[v.Addr] = old
		}
		c.want.vips[v.Addr] = b.vipFor(v, old)
	}
	for _, mk := range u.RemovedPorts {
		if o := applied.ports[keyFrom(mk)]; o != nil {
			c.got.ports[keyFrom(mk)] = o
		}
	}
	for _, p := range u.Ports {
		k := keyOf(p)
		old := applied.ports[k]
		if old != nil {
			c.got.ports[k] = old
		}
		c.want.ports[k] = b.portFor(p, old)
	}
	c.countHairpinUsers()
	for a, delta := range c.hairpinUsers {
		if n := applied.hairpin[a]; n > 0 {
			c.got.hairpin[a] = n
		}
		if n := applied.hairpin[a] + delta; n > 0 {
			c.want.hairpin[a] = n
		}
	}
	c.countPickUsers()
	for p, delta := range c.pickUsers {
		name := p.chain()
		if rules, ok := applied.picks[name]; ok {
			c.got.picks[name] = rules
		}
		if applied.pickUsers[name]+delta > 0 {
			c.want.picks[name] = []rule{b.rules.pick(p.prefix, p.n)}
		}
	}
	return c
}

// countPickUsers counts, for each pick chain that c's objects go to, before or after, how many
// more go to it after.
func (c *change) countPickUsers() {
	use := func(prefix string, o *objects, delta int) {
		if n := len(o.backends); n > 0 {
			c.pickUsers[pick{prefix: prefix, n: n}] += delta
		}
	}
	for _, o := range c.got.vips {
		use(pickVIPPrefix, o, -1)
	}
	for _, o := range c.want.vips {
		use(pickVIPPrefix, o, +1)
	}
	for _, o := range c.got.ports {
		use(pickPortPrefix, o, -1)
	}
	for _, o := range c.want.ports {
		use(pickPortPrefix, o, +1)
	}
}

// countHairpinUsers counts, for each backend address of c's VIPs, before or after, how many more
// VIPs list it after.
func (c *change) countHairpinUsers() {
	for _, o := range c.got.vips {
		for _, a := range o.backends {
			c.hairpinUsers[addr4Of(a)]--
		}
	}
	for _, o := range c.want.vips {
		for _, a := range o.backends {
			c.hairpinUsers[addr4Of(a)]++
		}
	}
}

// frame returns a model with m's frame — existence, hooked chains and sets, shared with m — and
// no objects.
func (m *tableModel) frame() *tableModel {
	f := newTableModel()
	f.exists, f.base, f.sets = m.exists, m.base, m.sets
	return f
}

// commit makes m, the applied table, hold c's want, once c's batch is in the kernel.
func (m *tableModel) commit(c change) {
	for a := range c.got.vips {
		delete(m.vips, a)
	}
	maps.Copy(m.vips, c.want.vips)
	for k := range c.got.ports {
		delete(m.ports, k)
	}
	maps.Copy(m.ports, c.want.ports)
	for a, delta := range c.hairpinUsers {
		if m.hairpin[a] += delta; m.hairpin[a] <= 0 {
			delete(m.hairpin, a)
		}
	}
	for p, delta := range c.pickUsers {
		name := p.chain()
		if m.pickUsers[name] += delta; m.pickUsers[name] > 0 {
			m.picks[name] = c.want.picks[name]
			continue
		}
		delete(m.pickUsers, name)
		delete(m.picks, name)
	}
}

// stateChange is the mesh.Update that turns the State bt's got was built for into the one its
// want was built for: the VIPs and ports bt changes, with want's inputs (want is built by
// desired, which records them).
func (bt *batch) stateChange() mesh.Update {
	var u mesh.Update
	for _, a := range bt.vips {
		if o := bt.want.vips[a]; o != nil {
			u.VIPs = append(u.VIPs, *o.input.(*mesh.VIP))
		} else {
			u.RemovedVIPs = append(u.RemovedVIPs, a)
		}
	}
	for _, k := range bt.ports {
		if o := bt.want.ports[k]; o != nil {
			u.Ports = append(u.Ports, *o.input.(*mesh.Port))
		} else {
			u.RemovedPorts = append(u.RemovedPorts, k.meshKey())
		}
	}
	return u
}
