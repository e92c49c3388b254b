package allocator

// This file owns the rebuild: the allocator's whole state derived from the replicated records
// (networks, bindings, tasks), checked against each other, with every inconsistency reported.

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// maxInconsistencies bounds the report's list; the log has them all.
const maxInconsistencies = 100

// records is what a rebuild reads: the store's own objects (never changed in place), taken
// under its lock in one go, so the rebuild itself runs without holding it.
type records struct {
	version  uint64
	networks []*api.Network
	bindings []*api.IPBinding // by ID
	services []string         // IDs, sorted
	tasks    map[string][]*api.Task
	nodes    map[string]*api.Node
}

func readRecords(tx store.ReadTx) *records {
	r := &records{version: tx.Version(), networks: tx.Networks(), bindings: tx.SharedBindings(),
		tasks: make(map[string][]*api.Task), nodes: make(map[string]*api.Node)}
	for _, s := range tx.Services() {
		r.services = append(r.services, s.Id)
		r.tasks[s.Id] = tx.SharedTasksByService(s.Id)
	}
	for _, n := range tx.Nodes() {
		r.nodes[n.Id] = n
	}
	return r
}

// rebuild replaces the allocator's state with the one the records describe; a.mu is held.
// A binding the pools cannot hold (its network is gone, its address outside the network's
// subnets or another binding's) is dropped from memory and its record deleted at its service's
// next round; the tasks that used it are then repaired there (see repairTasks).
func (a *Allocator) rebuild(r *records) {
	start := time.Now()
	a.nets = make(map[string]*netPools)
	a.bindings = make(map[Key]*binding, len(r.bindings))
	a.byAddr = make(map[addrKey]Key, len(r.bindings))
	a.bySvc = make(map[string]map[Key]struct{})
	a.dropped = make(map[string][]*api.IPBinding)
	a.stale = false
	a.report = Report{}
	networks := r.networks
	for _, n := range networks {
		np, err := newNetPools(n)
		if err != nil {
			a.inconsistent(fmt.Sprintf("network %s: %v; its bindings are dropped", n.Id, err))
			continue
		}
		a.nets[n.Id] = np
	}
	allocated := make(map[string][][]netip.Addr, len(a.nets))
	for id, np := range a.nets {
		allocated[id] = make([][]netip.Addr, len(np.subnets))
	}
	perService := make(map[string]int)
	for _, rec := range r.bindings {
		perService[rec.ServiceId]++
	}
	// In ID order: of two bindings with one address, the lower ID keeps it.
	for _, rec := range r.bindings {
		k := KeyOf(rec)
		drop := func(why string) {
			a.inconsistent(fmt.Sprintf("binding %s (%s): %s; binding dropped", rec.Id, k, why))
			a.dropped[rec.ServiceId] = append(a.dropped[rec.ServiceId], rec)
		}
		np := a.nets[rec.NetworkId]
		pfx, err := netip.ParsePrefix(rec.Address)
		switch {
		case np == nil:
			drop("its network is gone")
			continue
		case err != nil:
			drop(fmt.Sprintf("address %q: %v", rec.Address, err))
			continue
		case a.bindings[k] != nil:
			drop(fmt.Sprintf("binding %s has its key", a.bindings[k].id))
			continue
		}
		sub := -1
		for i, sp := range np.subnets {
			if sp.prefix.Contains(pfx.Addr()) && sp.prefix.Bits() == pfx.Bits() {
				sub = i
			}
		}
		if sub < 0 {
			drop(fmt.Sprintf("address %s is outside the subnets of network %s", pfx, np.name))
			continue
		}
		ak := addrKey{rec.NetworkId, pfx.Addr()}
		if other, taken := a.byAddr[ak]; taken {
			drop(fmt.Sprintf("address %s is also bound to %s", pfx, other))
			continue
		}
		a.byAddr[ak] = k
		allocated[rec.NetworkId][sub] = append(allocated[rec.NetworkId][sub], pfx.Addr())
		b := &binding{id: rec.Id, addr: pfx, task: rec.TaskId, pinned: rec.Pinned, releaseRequested: rec.ReleaseRequested, nodeKnown: true}
		if rec.HeldSince != nil {
			b.heldSince = rec.HeldSince.AsTime()
		}
		if n := len(rec.History); n > 0 && rec.History[n-1].GetNodeId() == "" {
			b.nodeKnown = false
		}
		a.bindings[k] = b
		if a.bySvc[k.Service] == nil {
			a.bySvc[k.Service] = make(map[Key]struct{}, perService[k.Service])
		}
		a.bySvc[k.Service][k] = struct{}{}
	}
	for _, n := range networks {
		np := a.nets[n.Id]
		if np == nil {
			continue
		}
		problems, latest := np.restore(allocated[n.Id], n.GetAllocation())
		for _, p := range problems {
			a.inconsistent(p)
		}
		if latest.After(a.now) {
			a.now = latest
		}
		if len(problems) > 0 {
			np.touched = true // write the record the pools now match
		}
	}
	a.checkTasks(r)
	a.report.Version = r.version
	a.report.Duration = time.Since(start)
	a.report.State = a.stateLocked()
	a.log.Info("allocator state rebuilt from the replicated records", "version", a.report.Version,
		"networks", len(a.nets), "bindings", len(a.bindings), "took", a.report.Duration,
		"inconsistencies", len(a.report.Inconsistencies))
}

// checkTasks reports the tasks that say they use an address their binding does not give them,
// and addresses two tasks that may be using them share.
// The repair is the service round's (repairTasks): this is the report of what the records held
// when this leader took over.
func (a *Allocator) checkTasks(r *records) {
	node := func(id string) *api.Node { return r.nodes[id] }
	// A task its binding names as holder, with the binding's address, is the one task that may
	// use that address unless another task claims it too: the bindings' addresses are distinct,
	// so only the other tasks (few, normally none) are collected and then checked.
	type claim struct {
		task *api.Task
		addr addrKey
	}
	var others []claim
	for _, id := range r.services {
		for _, t := range r.tasks[id] {
			if len(t.GetNetworks()) == 0 || !mayUseAddress(t, node) {
				continue
			}
			for _, att := range t.GetNetworks() {
				pfx, err := netip.ParsePrefix(att.GetAddress())
				if err != nil {
					continue // repairTasks reports it
				}
				k := TaskKey(t, att.GetNetworkId())
				b := a.bindings[k]
				if b != nil && b.task == t.Id && b.addr == pfx {
					continue
				}
				if b != nil && b.task == t.Id {
					a.inconsistent(fmt.Sprintf("task %s holds %s on network %s but its binding %s says %s", t.Id, pfx, att.GetNetworkId(), k, b.addr))
				}
				others = append(others, claim{t, addrKey{att.GetNetworkId(), pfx.Addr()}})
			}
		}
	}
	seen := make(map[addrKey]string, len(others))
	for _, c := range others {
		other, dup := seen[c.addr]
		if hk, bound := a.byAddr[c.addr]; !dup && bound {
			// The binding's holder, if it may use the address and holds it as its binding says.
			holder := a.bindings[hk].task
			for _, t := range r.tasks[hk.Service] {
				if t.Id == holder && holder != c.task.Id && mayUseAddress(t, node) && attachedAt(t, c.addr) {
					other, dup = holder, true
				}
			}
		}
		if dup {
			a.inconsistent(fmt.Sprintf("tasks %s and %s both hold %s on network %s", other, c.task.Id, c.addr.addr, c.addr.network))
		}
		seen[c.addr] = c.task.Id
	}
}

// attachedAt reports whether t was given address ak.
func attachedAt(t *api.Task, ak addrKey) bool {
	for _, att := range t.GetNetworks() {
		if p, err := netip.ParsePrefix(att.GetAddress()); err == nil && att.GetNetworkId() == ak.network && p.Addr() == ak.addr {
			return true
		}
	}
	return false
}

// inconsistent reports a disagreement between records, and what was done about it: as a log
// line, and in the report the control API serves (GetAllocatorState).
func (a *Allocator) inconsistent(msg string) {
	a.log.Warn("allocator: records disagree", "what", msg)
	if len(a.report.Inconsistencies) < maxInconsistencies {
		a.report.Inconsistencies = append(a.report.Inconsistencies, msg)
	}
}
