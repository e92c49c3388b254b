package allocator

// This file owns one service's round: its VIPs, the addresses of its tasks waiting in NEW (with
// fencing), the bindings it no longer wants, and the repair of tasks whose address disagrees
// with their binding.

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// reconcileService brings service id's bindings and its tasks waiting in NEW up to date. The
// empty ID stands for the allocator itself: its round only rebuilds, when a rebuild is due.
//
// The store's lock is held only to take the records a round reads (objects the store never
// changes in place, so they stay valid once it is released); the rebuild and the planning run
// without it, for the raft loop applies entries under that lock.
func (a *Allocator) reconcileService(ctx context.Context, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil && a.stale {
		a.store.View(func(tx store.ReadTx) { a.pending = readRecords(tx) })
	}
	if a.pending != nil {
		a.rebuild(a.pending)
		a.pending = nil
		a.running = true
	}
	if id == "" {
		return nil
	}
	var v *serviceView
	a.store.View(func(tx store.ReadTx) { v = readService(tx, id) })
	p := a.planService(v)
	if err := a.commit(ctx, &p); err != nil {
		a.stale = true
		return fmt.Errorf("service %s: %w", id, err)
	}
	return nil
}

// serviceView is what a service's round reads of the store: the store's own objects (never
// changed in place), taken under its lock in one go.
type serviceView struct {
	id       string
	svc      *api.Service // nil once removed
	tasks    []*api.Task
	bindings map[string]*api.IPBinding // by ID
	nodes    map[string]*api.Node
}

func readService(tx store.ReadTx, id string) *serviceView {
	v := &serviceView{id: id, svc: tx.Service(id), tasks: tx.SharedTasksByService(id),
		bindings: make(map[string]*api.IPBinding), nodes: make(map[string]*api.Node)}
	for _, b := range tx.SharedBindingsByService(id) {
		v.bindings[b.Id] = b
	}
	for _, n := range tx.Nodes() {
		v.nodes[n.Id] = n
	}
	return v
}

// servicePlan is the state of one service's round.
type servicePlan struct {
	a        *Allocator
	view     *serviceView
	svc      *api.Service // nil once removed
	id       string
	now      time.Time
	tasks    map[string]*api.Task   // the service's tasks (the store's own: clone to change)
	attached map[string]bool        // tasks given their addresses in this round
	records  map[Key]*api.IPBinding // binding records changed in this round
	created  map[Key]bool
	removed  []*api.IPBinding
	changed  map[string]*api.Task // tasks changed in this round
}

func (a *Allocator) planService(v *serviceView) plan {
	id := v.id
	sp := &servicePlan{
		a: a, view: v, svc: v.svc, id: id, now: a.clockNow(),
		tasks: make(map[string]*api.Task, len(v.tasks)), attached: make(map[string]bool),
		records: make(map[Key]*api.IPBinding), created: make(map[Key]bool), changed: make(map[string]*api.Task),
	}
	tasks := v.tasks
	for _, t := range tasks {
		sp.tasks[t.Id] = t
	}
	sp.removed = append(sp.removed, a.dropped[id]...)
	delete(a.dropped, id)
	sp.repairTasks(tasks)
	sp.ensureVIPs()
	// Slot order, so a new service's slots take the pool's addresses in order.
	var waiting []*api.Task
	for _, t := range tasks {
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_NEW && reconcile.MeantToRun(t) {
			waiting = append(waiting, t)
		}
	}
	slices.SortFunc(waiting, func(x, y *api.Task) int {
		return cmp.Or(cmp.Compare(x.Slot, y.Slot), cmp.Compare(x.NodeId, y.NodeId), cmp.Compare(x.Id, y.Id))
	})
	for _, t := range waiting {
		sp.attach(t)
	}
	sp.tendBindings()
	return sp.flush()
}

// flush turns the round's changes into writes, in a stable order.
func (sp *servicePlan) flush() plan {
	var p plan
	for _, rec := range sp.removed {
		p.remove(rec)
	}
	keys := make([]Key, 0, len(sp.records))
	for k := range sp.records {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		if sp.created[k] {
			p.create(sp.records[k])
		} else {
			p.update(sp.records[k])
		}
	}
	ids := make([]string, 0, len(sp.changed))
	for id := range sp.changed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p.update(sp.changed[id])
	}
	return p
}

// task is the task id as this round sees it; nil when it is gone (reaped).
func (sp *servicePlan) task(id string) *api.Task {
	if t, ok := sp.changed[id]; ok {
		return t
	}
	if t, ok := sp.tasks[id]; ok {
		return t
	}
	var t *api.Task // a task of another service: never, unless records disagree
	sp.a.store.View(func(tx store.ReadTx) { t = tx.Task(id) })
	return t
}

// mutableTask is a copy of task id to change in this round.
func (sp *servicePlan) mutableTask(t *api.Task) *api.Task {
	if c, ok := sp.changed[t.Id]; ok {
		return c
	}
	c := proto.Clone(t).(*api.Task)
	sp.changed[t.Id] = c
	return c
}

// record is the record of k's binding to change in this round.
func (sp *servicePlan) record(k Key) *api.IPBinding {
	if rec, ok := sp.records[k]; ok {
		return rec
	}
	rec := sp.binding(k)
	sp.records[k] = rec
	return rec
}

// binding is a copy of k's record as the round read it.
func (sp *servicePlan) binding(k Key) *api.IPBinding {
	if rec := sp.view.bindings[sp.a.bindings.get(k).id]; rec != nil {
		return proto.Clone(rec).(*api.IPBinding)
	}
	var rec *api.IPBinding // created after the round's read: never, the allocator creates them
	sp.a.store.View(func(tx store.ReadTx) { rec = tx.Binding(sp.a.bindings.get(k).id) })
	return rec
}

func (sp *servicePlan) node(id string) *api.Node { return sp.view.nodes[id] }

// mayUseAddress reports whether t may be using its addresses, or may yet: it was given them and
// has not ended, and it runs on a node that is up, or has no node yet but may still get one.
// Only then does fencing keep its slot's address from a new task.
func (sp *servicePlan) mayUseAddress(t *api.Task) bool {
	if t != nil && sp.attached[t.Id] {
		return true
	}
	return mayUseAddress(t, sp.node)
}

// mayUseAddress is the rule of servicePlan.mayUseAddress, with node looking nodes up.
func mayUseAddress(t *api.Task, node func(string) *api.Node) bool {
	if t == nil {
		return false
	}
	st := t.GetStatus().GetState()
	if st == api.TaskState_TASK_STATE_NEW || reconcile.IsTerminal(st) {
		return false
	}
	if t.NodeId == "" {
		return reconcile.MeantToRun(t)
	}
	n := node(t.NodeId)
	return n != nil && n.GetStatus().GetState() != api.NodeState_NODE_STATE_DOWN
}

func (sp *servicePlan) serviceName() string {
	if sp.svc != nil {
		return sp.svc.GetSpec().GetAnnotations().GetName()
	}
	for _, t := range sp.tasks {
		return t.ServiceName
	}
	return sp.id
}

// networkName is a network's name for messages.
func (sp *servicePlan) networkName(id string) string {
	if np := sp.a.nets[id]; np != nil && np.name != "" {
		return np.name
	}
	return id
}

// wait leaves t in NEW with msg as the reason, writing it only when it changed.
func (sp *servicePlan) wait(t *api.Task, msg string) {
	if t.GetStatus().GetMessage() == msg {
		return
	}
	reconcile.SetStatus(sp.mutableTask(t), api.TaskState_TASK_STATE_NEW, msg, sp.now)
}

// attach gives t its addresses, one per network of its spec, from its bindings (made when
// missing), once every binding's previous holder can no longer be using it.
func (sp *servicePlan) attach(t *api.Task) {
	a := sp.a
	nets := t.GetSpec().GetNetworks()
	if len(nets) == 0 {
		reconcile.SetStatus(sp.mutableTask(t), api.TaskState_TASK_STATE_PENDING, api.TaskMessagePendingScheduling, sp.now)
		return
	}
	// Fencing first: nothing changes for a task that must wait.
	for _, cfg := range nets {
		np := a.nets[cfg.GetTarget()]
		if np == nil {
			sp.wait(t, fmt.Sprintf("waiting for network %s, which does not exist", cfg.GetTarget()))
			return
		}
		k := TaskKey(t, cfg.GetTarget())
		if k.Kind == api.IPBinding_KIND_NODE && k.Node == "" {
			sp.wait(t, "waiting for a node")
			return
		}
		if b := a.bindings.get(k); b != nil && b.task != "" && b.task != t.Id {
			if prev := sp.task(b.task); sp.mayUseAddress(prev) {
				sp.wait(t, fmt.Sprintf("waiting for task %s, the previous task of %s, to stop before it takes %s on network %s",
					b.task, k.describe(), b.addr.Addr(), np.name))
				return
			}
		}
	}
	sp.orphanPredecessors(t)
	atts := make([]*api.NetworkAttachment, 0, len(nets))
	keys := make([]Key, 0, len(nets))
	for _, cfg := range nets {
		k := TaskKey(t, cfg.GetTarget())
		if msg := sp.bind(k, cfg, t.Slot); msg != "" {
			sp.wait(t, msg)
			return
		}
		b := a.bindings.get(k)
		keys = append(keys, k)
		atts = append(atts, &api.NetworkAttachment{NetworkId: cfg.GetTarget(), Address: b.addr.String(), BindingId: b.id})
	}
	for _, k := range keys {
		b := a.bindings.get(k)
		rec := sp.record(k)
		b.task, b.heldSince = t.Id, time.Time{}
		b.nodeKnown = t.NodeId != ""
		rec.TaskId, rec.HeldSince = t.Id, nil
		rec.History = append(rec.History, &api.BindingHolder{TaskId: t.Id, NodeId: t.NodeId, Address: rec.Address, Since: timestamppb.New(sp.now)})
		if n := len(rec.History); n > historyLimit {
			rec.History = rec.History[n-historyLimit:]
		}
	}
	sp.attached[t.Id] = true
	mt := sp.mutableTask(t)
	mt.Networks = atts
	reconcile.SetStatus(mt, api.TaskState_TASK_STATE_PENDING, api.TaskMessagePendingScheduling, sp.now)
}

// orphanPredecessors marks ORPHANED each previous holder of t's bindings that was placed and has
// not ended, but may no longer be using its address because its node is down or gone: its
// address goes to t, and a terminal state no report can move back (states only move forward)
// keeps a late report from the node, or the node's return, from making two live holders of it.
// Its agent, back, stops what it still runs, for its desired state is past RUNNING.
func (sp *servicePlan) orphanPredecessors(t *api.Task) {
	for _, cfg := range t.GetSpec().GetNetworks() {
		b := sp.a.bindings.get(TaskKey(t, cfg.GetTarget()))
		if b == nil || b.task == "" || b.task == t.Id {
			continue
		}
		prev := sp.task(b.task)
		st := prev.GetStatus().GetState()
		if prev == nil || prev.NodeId == "" || st == api.TaskState_TASK_STATE_NEW || reconcile.IsTerminal(st) {
			continue
		}
		mp := sp.mutableTask(prev)
		if mp.DesiredState <= api.TaskState_TASK_STATE_RUNNING {
			mp.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		}
		reconcile.SetStatus(mp, api.TaskState_TASK_STATE_ORPHANED,
			fmt.Sprintf("orphaned: node %s is down and the task's addresses went to task %s", prev.NodeId, t.Id), sp.now)
	}
}

// bind makes k's binding hold the address its pin says, or any address when it has none and no
// pin: it creates the binding, or moves it to a changed pin. It returns why it cannot, or "".
func (sp *servicePlan) bind(k Key, cfg *api.NetworkAttachmentConfig, slot uint64) string {
	a := sp.a
	np := a.nets[k.Network]
	pin, pinned, err := reconcile.PinFor(cfg, slot)
	if err != nil {
		return fmt.Sprintf("cannot take the pinned address on network %s: %v", np.name, err)
	}
	b := a.bindings.get(k)
	switch {
	case b == nil:
		var pfx netip.Prefix
		if pinned {
			pfx, err = np.allocateSpecific(pin, sp.now, ipam.RefuseCooling)
		} else {
			pfx, err = np.allocateNext(sp.now)
		}
		if err != nil {
			return sp.refusal(k, pin, pinned, err)
		}
		sp.create(k, pfx, pinned)
	case pinned && b.addr.Addr() != pin:
		policy := ipam.RefuseCooling
		if sp.heldBefore(k, pin) {
			policy = ipam.TakeCooling
		}
		pfx, err := np.allocateSpecific(pin, sp.now, policy)
		if err != nil {
			return sp.refusal(k, pin, pinned, err)
		}
		old := b.addr
		if err := np.release(old.Addr(), sp.now); err != nil {
			a.log.Error("release of a re-pinned slot's address failed", "binding", k.String(), "address", old, "err", err)
		}
		delete(a.byAddr, addrKey{k.Network, old.Addr()})
		a.byAddr[addrKey{k.Network, pin}] = k
		b.addr, b.pinned = pfx, true
		rec := sp.record(k)
		rec.Address, rec.Pinned = pfx.String(), true
		a.log.Info("slot moved to its new pinned address", "binding", k.String(), "from", old, "to", pfx)
	case b.pinned != pinned:
		b.pinned = pinned
		sp.record(k).Pinned = pinned
	}
	return ""
}

// heldBefore reports whether k's binding held addr before: then taking it back while it cools
// down is safe, for stale entries elsewhere still point at k's own tasks.
func (sp *servicePlan) heldBefore(k Key, addr netip.Addr) bool {
	rec, ok := sp.records[k]
	if !ok {
		rec = sp.binding(k) // read only: no write unless the pin moves
	}
	for _, h := range rec.GetHistory() {
		if p, err := netip.ParsePrefix(h.GetAddress()); err == nil && p.Addr() == addr {
			return true
		}
	}
	return false
}

// refusal says why k cannot have its address.
func (sp *servicePlan) refusal(k Key, pin netip.Addr, pinned bool, err error) string {
	name := sp.networkName(k.Network)
	if !pinned {
		return fmt.Sprintf("no address for %s on network %s: %v", k.describe(), name, err)
	}
	if holder, ok := sp.a.byAddr[addrKey{k.Network, pin}]; ok {
		owner := holder.Service
		sp.a.store.View(func(tx store.ReadTx) {
			if s := tx.Service(holder.Service); s != nil {
				owner = s.GetSpec().GetAnnotations().GetName()
			}
		})
		return fmt.Sprintf("pinned address %s on network %s is held by service %s %s", pin, name, owner, holder.describe())
	}
	return fmt.Sprintf("pinned address %s on network %s cannot be taken: %v", pin, name, err)
}

// create records a new binding of k to pfx.
func (sp *servicePlan) create(k Key, pfx netip.Prefix, pinned bool) {
	a := sp.a
	id := BindingID(k)
	a.bindings.put(k, &binding{id: id, addr: pfx, pinned: pinned, nodeKnown: true})
	a.byAddr[addrKey{k.Network, pfx.Addr()}] = k
	sp.records[k] = &api.IPBinding{
		Id: id, ServiceId: k.Service, ServiceName: sp.serviceName(), NetworkId: k.Network,
		Kind: k.Kind, Slot: k.Slot, NodeId: k.Node, Address: pfx.String(), Pinned: pinned,
	}
	sp.created[k] = true
}

// release frees k's binding: its record goes, its address cools down.
func (sp *servicePlan) release(k Key, why string) {
	a := sp.a
	b := a.bindings.get(k)
	if np := a.nets[k.Network]; np != nil {
		if err := np.release(b.addr.Addr(), sp.now); err != nil {
			a.log.Error("release of a binding's address failed", "binding", k.String(), "address", b.addr, "err", err)
		}
	}
	if sp.created[k] {
		delete(sp.records, k)
		delete(sp.created, k)
	} else {
		sp.removed = append(sp.removed, sp.record(k))
		delete(sp.records, k)
	}
	a.bindings.remove(k)
	delete(a.byAddr, addrKey{k.Network, b.addr.Addr()})
	a.log.Info("binding released", "binding", k.String(), "address", b.addr, "why", why)
}

// ensureVIPs binds the service's VIP on each of its networks, in endpoint mode vip.
func (sp *servicePlan) ensureVIPs() {
	if sp.svc == nil || sp.svc.GetSpec().GetEndpoint().GetMode() != api.EndpointSpec_MODE_VIP {
		return
	}
	for _, cfg := range sp.svc.GetSpec().GetTask().GetNetworks() {
		k := VIPKey(sp.id, cfg.GetTarget())
		np := sp.a.nets[k.Network]
		if np == nil || sp.a.bindings.get(k) != nil {
			continue
		}
		pfx, err := np.allocateNext(sp.now)
		if err != nil {
			sp.a.log.Warn("no address for a service VIP", "service", sp.serviceName(), "network", np.name, "err", err)
			continue
		}
		sp.create(k, pfx, false)
	}
}

// wanted says whether k's binding is still wanted by the service: wanted, held (its slot was
// scaled away, it stays reserved for a while) or gone for good.
type wantState int

const (
	wanted wantState = iota
	held
	gone
)

func (sp *servicePlan) wanted(k Key) wantState {
	spec := sp.svc.GetSpec()
	if sp.svc == nil || !slices.ContainsFunc(spec.GetTask().GetNetworks(), func(c *api.NetworkAttachmentConfig) bool { return c.GetTarget() == k.Network }) {
		return gone
	}
	switch k.Kind {
	case api.IPBinding_KIND_SLOT:
		if spec.GetReplicated() == nil {
			return gone
		}
		if k.Slot > spec.GetReplicated().GetReplicas() {
			return held
		}
	case api.IPBinding_KIND_NODE:
		if spec.GetGlobal() == nil || sp.node(k.Node) == nil {
			return gone
		}
	case api.IPBinding_KIND_VIP:
		if spec.GetEndpoint().GetMode() != api.EndpointSpec_MODE_VIP {
			return gone
		}
	}
	return wanted
}

// tendBindings releases the service's bindings that are no longer wanted (or asked to be) once
// no task can use their address, holds those whose slot was scaled away, expires holds past the
// service's ip_hold, and records the node of each binding's holder once it is placed.
func (sp *servicePlan) tendBindings() {
	a := sp.a
	keys := make([]Key, 0, len(a.bindings.service(sp.id)))
	for k := range a.bindings.service(sp.id) {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	hold := sp.svc.GetSpec().GetIpHold().AsDuration()
	for _, k := range keys {
		b := a.bindings.get(k)
		holder := sp.task(b.task)
		busy := b.task != "" && sp.mayUseAddress(holder)
		state := sp.wanted(k)
		switch {
		case b.releaseRequested || state == gone:
			if !busy {
				why := "its service, network or node is gone"
				if b.releaseRequested {
					why = "release requested"
				}
				sp.release(k, why)
				continue
			}
		case state == held:
			if b.heldSince.IsZero() {
				b.heldSince = sp.now
				sp.record(k).HeldSince = timestamppb.New(sp.now)
			} else if hold > 0 && !sp.now.Before(b.heldSince.Add(hold)) && !busy {
				sp.release(k, "ip_hold passed")
				continue
			}
		case !b.heldSince.IsZero():
			b.heldSince = time.Time{}
			sp.record(k).HeldSince = nil
		}
		if !b.nodeKnown && holder != nil && holder.NodeId != "" {
			rec := sp.record(k)
			if n := len(rec.History); n > 0 && rec.History[n-1].GetTaskId() == holder.Id {
				rec.History[n-1].NodeId = holder.NodeId
			}
			b.nodeKnown = true
		}
	}
}

// repairTasks checks every task that may be using addresses against the bindings, and repairs
// what disagrees: a task whose binding is gone gets it back when its address is free, and a task
// whose address another task holds, or its binding no longer says, is shut down so that its
// slot's next task takes the binding's address. Each repair is reported.
func (sp *servicePlan) repairTasks(tasks []*api.Task) {
	a := sp.a
	for _, t := range tasks {
		if len(t.GetNetworks()) == 0 || !sp.mayUseAddress(t) {
			continue
		}
		for _, att := range t.GetNetworks() {
			k := TaskKey(t, att.GetNetworkId())
			addr, err := netip.ParsePrefix(att.GetAddress())
			if err != nil {
				sp.shutDown(t, fmt.Sprintf("task %s has an unreadable address %q on network %s", t.Id, att.GetAddress(), sp.networkName(att.GetNetworkId())))
				break
			}
			b := a.bindings.get(k)
			switch {
			case b == nil:
				if sp.adopt(t, k, addr) {
					continue
				}
				sp.shutDown(t, fmt.Sprintf("task %s holds %s on network %s with no binding, and the address is taken", t.Id, addr, sp.networkName(k.Network)))
			case b.task == t.Id && b.addr != addr:
				sp.shutDown(t, fmt.Sprintf("task %s holds %s on network %s but its binding says %s", t.Id, addr, sp.networkName(k.Network), b.addr))
			case b.task != t.Id && b.addr.Addr() == addr.Addr() && t.DesiredState <= api.TaskState_TASK_STATE_RUNNING:
				sp.shutDown(t, fmt.Sprintf("task %s still uses %s on network %s, which its binding gave to task %s", t.Id, addr, sp.networkName(k.Network), b.task))
			default:
				continue
			}
			break
		}
	}
}

// adopt recreates the binding of k for a task that uses addr without one, if addr is free.
func (sp *servicePlan) adopt(t *api.Task, k Key, addr netip.Prefix) bool {
	np := sp.a.nets[k.Network]
	if np == nil {
		return false
	}
	pfx, err := np.allocateSpecific(addr.Addr(), sp.now, ipam.TakeCooling)
	if err != nil {
		return false
	}
	sp.create(k, pfx, false)
	b := sp.a.bindings.get(k)
	b.task = t.Id
	rec := sp.records[k]
	rec.TaskId = t.Id
	rec.History = []*api.BindingHolder{{TaskId: t.Id, NodeId: t.NodeId, Address: pfx.String(), Since: timestamppb.New(sp.now)}}
	sp.a.inconsistent(fmt.Sprintf("task %s holds %s on network %s with no binding; binding %s recreated for it", t.Id, addr, sp.networkName(k.Network), k))
	return true
}

// shutDown sets t's desired state to SHUTDOWN and reports why.
func (sp *servicePlan) shutDown(t *api.Task, why string) {
	if t.DesiredState > api.TaskState_TASK_STATE_RUNNING {
		return
	}
	sp.mutableTask(t).DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
	sp.a.inconsistent(why + "; task shut down")
}
