package allocator

// This file owns the rebuild: the allocator's whole state derived from the replicated records
// (networks, bindings, tasks), checked against each other, with every inconsistency reported.

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
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
	a.bindings = newBindingTable()
	a.byAddr = make(map[addrKey]Key, len(r.bindings))
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
	for svc, n := range perService {
		a.bindings.reserve(svc, n)
	}
	// Reading the records is most of the work (each is a trip to memory of its own): it runs on
	// every processor; the maps are then filled in ID order, so of two bindings with one address
	// the lower ID keeps it.
	recs := make([]decoded, len(r.bindings))
	inParallel(len(recs), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			recs[i] = decode(r.bindings[i])
		}
	})
	for i, d := range recs {
		rec, k := r.bindings[i], d.key
		drop := func(why string) {
			a.inconsistent(fmt.Sprintf("binding %s (%s): %s; binding dropped", rec.Id, k, why))
			a.dropped[rec.ServiceId] = append(a.dropped[rec.ServiceId], rec)
		}
		np := a.nets[k.Network]
		switch {
		case np == nil:
			drop("its network is gone")
			continue
		case d.err != nil:
			drop(fmt.Sprintf("address %q: %v", rec.Address, d.err))
			continue
		case a.bindings.get(k) != nil:
			drop(fmt.Sprintf("binding %s has its key", a.bindings.get(k).id))
			continue
		}
		pfx := d.b.addr
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
		ak := addrKey{k.Network, pfx.Addr()}
		if other, taken := a.byAddr[ak]; taken {
			drop(fmt.Sprintf("address %s is also bound to %s", pfx, other))
			continue
		}
		a.byAddr[ak] = k
		allocated[k.Network][sub] = append(allocated[k.Network][sub], pfx.Addr())
		a.bindings.put(k, d.b)
	}
	// The pools and the tasks' check read what the loop above built and nothing of each other.
	type restored struct {
		problems []string
		latest   time.Time
	}
	pools := make(map[string]restored, len(a.nets))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, n := range networks {
			if np := a.nets[n.Id]; np != nil {
				var rs restored
				rs.problems, rs.latest = np.restore(allocated[n.Id], n.GetAllocation())
				pools[n.Id] = rs
			}
		}
	}()
	taskProblems := a.checkTasks(r)
	<-done
	for _, n := range networks {
		rs, ok := pools[n.Id]
		if !ok {
			continue
		}
		for _, p := range rs.problems {
			a.inconsistent(p)
		}
		if rs.latest.After(a.now) {
			a.now = rs.latest
		}
		if len(rs.problems) > 0 {
			a.nets[n.Id].touched = true // write the record the pools now match
		}
	}
	for _, p := range taskProblems {
		a.inconsistent(p)
	}
	a.report.Version = r.version
	a.report.Duration = time.Since(start)
	a.report.State = a.stateLocked()
	a.log.Info("allocator state rebuilt from the replicated records", "version", a.report.Version,
		"networks", len(a.nets), "bindings", a.bindings.len(), "took", a.report.Duration,
		"inconsistencies", len(a.report.Inconsistencies))
}

// decoded is what the rebuild takes from one binding record.
type decoded struct {
	key Key
	err error // the address does not parse
	b   *binding
}

func decode(rec *api.IPBinding) decoded {
	d := decoded{key: KeyOf(rec)}
	pfx, err := netip.ParsePrefix(rec.Address)
	if err != nil {
		d.err = err
		return d
	}
	b := &binding{id: rec.Id, addr: pfx, task: rec.TaskId, pinned: rec.Pinned, releaseRequested: rec.ReleaseRequested, nodeKnown: true}
	if rec.HeldSince != nil {
		b.heldSince = rec.HeldSince.AsTime()
	}
	if n := len(rec.History); n > 0 && rec.History[n-1].GetNodeId() == "" {
		b.nodeKnown = false
	}
	d.b = b
	return d
}

// checkTasks finds the tasks that say they use an address their binding does not give them,
// and addresses two tasks that may be using them share; it returns what it found, in the
// order of the services and their tasks.
// The repair is the service round's (repairTasks): this is the report of what the records held
// when this leader took over.
func (a *Allocator) checkTasks(r *records) []string {
	node := func(id string) *api.Node { return r.nodes[id] }
	var tasks []*api.Task
	for _, id := range r.services {
		tasks = append(tasks, r.tasks[id]...)
	}
	// A task its binding names as holder, with the binding's address, is the one task that may
	// use that address unless another task claims it too: the bindings' addresses are distinct,
	// so only the other tasks (few, normally none) are collected and then checked.
	type claim struct {
		task *api.Task
		addr addrKey
	}
	type found struct {
		others   []claim
		problems []string
	}
	chunks := make([]found, runtime.GOMAXPROCS(0))
	inParallel(len(tasks), func(c, lo, hi int) {
		f := &chunks[c]
		for _, t := range tasks[lo:hi] {
			if len(t.GetNetworks()) == 0 || !mayUseAddress(t, node) {
				continue
			}
			for _, att := range t.GetNetworks() {
				pfx, err := netip.ParsePrefix(att.GetAddress())
				if err != nil {
					continue // repairTasks reports it
				}
				k := TaskKey(t, att.GetNetworkId())
				b := a.bindings.get(k)
				if b != nil && b.task == t.Id && b.addr == pfx {
					continue
				}
				if b != nil && b.task == t.Id {
					f.problems = append(f.problems, fmt.Sprintf("task %s holds %s on network %s but its binding %s says %s", t.Id, pfx, att.GetNetworkId(), k, b.addr))
				}
				f.others = append(f.others, claim{t, addrKey{att.GetNetworkId(), pfx.Addr()}})
			}
		}
	})
	var problems []string
	var others []claim
	for _, f := range chunks {
		problems = append(problems, f.problems...)
		others = append(others, f.others...)
	}
	seen := make(map[addrKey]string, len(others))
	for _, c := range others {
		other, dup := seen[c.addr]
		if hk, bound := a.byAddr[c.addr]; !dup && bound {
			// The binding's holder, if it may use the address and holds it as its binding says.
			holder := a.bindings.get(hk).task
			for _, t := range r.tasks[hk.Service] {
				if t.Id == holder && holder != c.task.Id && mayUseAddress(t, node) && attachedAt(t, c.addr) {
					other, dup = holder, true
				}
			}
		}
		if dup {
			problems = append(problems, fmt.Sprintf("tasks %s and %s both hold %s on network %s", other, c.task.Id, c.addr.addr, c.addr.network))
		}
		seen[c.addr] = c.task.Id
	}
	return problems
}

// inParallel splits [0, n) into one contiguous chunk per processor, calls fn on each (c is the
// chunk's number, below GOMAXPROCS) in a goroutine of its own, and waits for them all.
func inParallel(n int, fn func(c, lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	per := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for c := 0; c < workers && c*per < n; c++ {
		lo, hi := c*per, min((c+1)*per, n)
		wg.Go(func() { fn(c, lo, hi) })
	}
	wg.Wait()
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
