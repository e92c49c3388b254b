package allocator

// This file owns the Allocator: its in-memory state, the watch loop that drives it on the leader,
// and how one round's writes are committed.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// tick is how often every service with bindings is looked at again: to expire held bindings
// (ip_hold), retry tasks whose pinned address was cooling down, and retry failed commits.
const tick = time.Second

// historyLimit is how many holders a binding remembers.
const historyLimit = 16

// Allocator binds slots, nodes and VIPs to addresses on the leader. Build one per leadership term
// with New and Run it; State and Report may be called from any goroutine (State also says
// whether it has rebuilt and allocates).
type Allocator struct {
	store *store.MemoryStore
	log   *slog.Logger
	clock func() time.Time

	mu       sync.Mutex
	running  bool
	nets     map[string]*netPools        // by network ID
	bindings bindingTable                // every binding record, as committed
	byAddr   map[addrKey]Key             // (network, address) → the binding holding it
	now      time.Time                   // the latest now handed to a pool; never goes back
	stale    bool                        // memory may differ from the records: rebuild first
	pending  *records                    // records read for a rebuild not done yet
	dropped  map[string][]*api.IPBinding // records the rebuild could not keep, by service: deleted at its next round
	report   Report
}

// binding is what the allocator keeps of a binding record: enough to decide, without reading
// the record, whether it needs a write.
type binding struct {
	id               string
	addr             netip.Prefix
	task             string
	pinned           bool
	heldSince        time.Time // zero while wanted
	releaseRequested bool
	nodeKnown        bool // the last history entry names its task's node (or there is none)
}

type addrKey struct {
	network string
	addr    netip.Addr
}

// Report describes the allocator's last rebuild from the replicated records.
type Report struct {
	// Version is the store version the rebuild read.
	Version uint64
	// Duration is how long the rebuild took.
	Duration time.Duration
	// State is the allocator's dump right after the rebuild (see State).
	State []byte
	// Inconsistencies are what the rebuild found in the records, each with what was done.
	Inconsistencies []string
}

// New returns an allocator of the addresses in s.
func New(s *store.MemoryStore, log *slog.Logger) *Allocator {
	if log == nil {
		log = slog.Default()
	}
	return &Allocator{store: s, log: log, clock: time.Now}
}

// Run allocates until ctx ends. It rebuilds its state from the store first, and reports and
// repairs what it finds inconsistent, before it allocates anything.
func (a *Allocator) Run(ctx context.Context) error {
	defer func() {
		a.mu.Lock()
		a.running = false
		a.mu.Unlock()
	}()
	loop := &reconcile.Loop{
		Name:      "allocator",
		Store:     a.store,
		Log:       a.log,
		Tick:      tick,
		MarkAll:   a.markAll,
		Note:      a.note,
		Reconcile: a.reconcileService,
	}
	return loop.Run(ctx)
}

// markAll, when full (start, snapshot restore, watch lost), reads the records for a rebuild,
// which the next round does without the store's lock (markAll runs under it), and marks the
// allocator itself ("") for that round. It marks every service that has bindings or attaches to
// a network.
func (a *Allocator) markAll(tx store.ReadTx, dirty reconcile.Dirty, full bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if full {
		a.pending = readRecords(tx)
		dirty.Mark("")
		for _, b := range a.pending.bindings {
			dirty.Mark(b.ServiceId)
		}
	}
	for id := range a.bindings.bySvc {
		dirty.Mark(id)
	}
	for _, s := range tx.Services() {
		if len(s.GetSpec().GetTask().GetNetworks()) > 0 {
			dirty.Mark(s.Id)
		}
	}
}

// note marks what committed batches concern: services whose tasks wait in NEW or hold
// addresses, services changed, services with tasks on a node that went down or away, and
// bindings asked to be released. Networks created and removed get or lose their pools here.
func (a *Allocator) note(batches []store.Batch, dirty reconcile.Dirty) {
	var nodesGone []string
	for _, b := range batches {
		for _, ev := range b.Events {
			switch o := ev.Object.(type) {
			case *api.Task:
				if o.GetStatus().GetState() == api.TaskState_TASK_STATE_NEW || len(o.GetNetworks()) > 0 {
					dirty.Mark(o.ServiceId)
				}
			case *api.Service:
				dirty.Mark(o.Id)
			case *api.Node:
				if ev.Action == api.StoreAction_KIND_DELETE || o.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN {
					nodesGone = append(nodesGone, o.Id)
				}
			case *api.IPBinding:
				if o.GetReleaseRequested() && ev.Action != api.StoreAction_KIND_DELETE {
					a.noteReleaseRequest(o)
					dirty.Mark(o.ServiceId)
				}
			case *api.Network:
				a.noteNetwork(ev.Action, o)
			}
		}
	}
	if len(nodesGone) == 0 {
		return
	}
	a.store.View(func(tx store.ReadTx) {
		for _, n := range nodesGone {
			for _, t := range tx.TasksByNode(n) {
				if len(t.GetNetworks()) > 0 {
					dirty.Mark(t.ServiceId)
				}
			}
		}
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range nodesGone {
		for svc, m := range a.bindings.bySvc {
			for k := range m {
				if k.Kind == api.IPBinding_KIND_NODE && k.Node == n {
					dirty.Mark(svc)
					break
				}
			}
		}
	}
}

// noteNetwork builds the pools of a network created and drops those of one removed. The control
// API refuses to remove a network while bindings on it remain.
func (a *Allocator) noteNetwork(action api.StoreAction_Kind, n *api.Network) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.pending; r != nil { // the rebuild to come must see it too
		r.networks = slices.DeleteFunc(r.networks, func(x *api.Network) bool { return x.Id == n.Id })
		if action != api.StoreAction_KIND_DELETE {
			r.networks = append(r.networks, n)
		}
		return
	}
	switch {
	case action == api.StoreAction_KIND_DELETE:
		delete(a.nets, n.Id)
	case a.nets[n.Id] == nil:
		np, err := newNetPools(n)
		if err != nil {
			a.log.Error("network's pools cannot be built; its tasks will wait", "network", n.Id, "err", err)
			return
		}
		a.nets[n.Id] = np
	}
}

// noteReleaseRequest records a request to release a binding (the control API's only write).
func (a *Allocator) noteReleaseRequest(rec *api.IPBinding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.pending; r != nil { // the rebuild to come must see it too
		for i, b := range r.bindings {
			if b.Id == rec.Id {
				r.bindings[i] = rec
			}
		}
		return
	}
	if b := a.bindings.get(KeyOf(rec)); b != nil && b.id == rec.Id {
		b.releaseRequested = true
	}
}

// Report returns what the last rebuild found.
func (a *Allocator) Report() Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.report
	r.Inconsistencies = slices.Clone(r.Inconsistencies)
	return r
}

// clockNow is the now handed to pools: the local clock, but never before a now already handed
// out or a release time read from the records (a new leader's clock may be behind the old one's).
func (a *Allocator) clockNow() time.Time {
	if t := a.clock(); t.After(a.now) {
		a.now = t
	}
	return a.now
}

// errStale ends a commit whose plan read objects that have changed since.
var errStale = errors.New("objects changed since the allocator read them")

// plan is one round's writes for one service, in order.
type plan struct {
	writes []write
}

type write struct {
	action api.StoreAction_Kind
	obj    store.Object // an update or delete carries the version it was read at
}

func (p *plan) create(o store.Object) {
	p.writes = append(p.writes, write{api.StoreAction_KIND_CREATE, o})
}
func (p *plan) update(o store.Object) {
	p.writes = append(p.writes, write{api.StoreAction_KIND_UPDATE, o})
}
func (p *plan) remove(o store.Object) {
	p.writes = append(p.writes, write{api.StoreAction_KIND_DELETE, o})
}

// commit writes p in transactions of at most reconcile.MaxWritesPerUpdate writes, each with the
// allocation records of the networks whose pools changed. An object changed since it was read
// fails the commit with errStale, and the caller rebuilds: memory already holds the plan.
func (a *Allocator) commit(ctx context.Context, p *plan) error {
	var records []*api.Network
	for _, np := range a.nets {
		if np.touched {
			records = append(records, &api.Network{Id: np.id, Allocation: np.records()})
			np.touched = false
		}
	}
	if len(p.writes) == 0 && len(records) == 0 {
		return nil
	}
	for start := 0; start == 0 || start < len(p.writes); start += reconcile.MaxWritesPerUpdate {
		chunk := p.writes[start:min(start+reconcile.MaxWritesPerUpdate, len(p.writes))]
		err := a.store.Update(ctx, func(tx store.Tx) error {
			for _, w := range chunk {
				if err := stage(tx, w); err != nil {
					return err
				}
			}
			for _, rec := range records {
				n := tx.Network(rec.Id)
				if n == nil || proto.Equal(&api.Network{Allocation: n.Allocation}, &api.Network{Allocation: rec.Allocation}) {
					continue
				}
				n.Allocation = rec.Allocation
				if err := tx.Update(n); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// stage stages w, refusing with errStale when its object changed since it was read.
func stage(tx store.Tx, w write) error {
	if w.action == api.StoreAction_KIND_CREATE {
		return tx.Create(w.obj)
	}
	var cur store.Object
	switch o := w.obj.(type) {
	case *api.Task:
		if t := tx.Task(o.Id); t != nil {
			cur = t
		}
	case *api.IPBinding:
		if b := tx.Binding(o.Id); b != nil {
			cur = b
		}
	default:
		return fmt.Errorf("allocator: cannot stage a %T", o)
	}
	if cur == nil || cur.GetMeta().GetVersion() != w.obj.GetMeta().GetVersion() {
		return errStale
	}
	if w.action == api.StoreAction_KIND_DELETE {
		return tx.Delete(w.obj)
	}
	return tx.Update(w.obj)
}
