// Package dispatcher is the agents' side of the leader: it keeps one session
// per node, takes heartbeats, marks nodes READY when they connect and DOWN
// when their heartbeats stop, tells each node its desired role and the
// managers it may reach, streams each node the tasks assigned to it and
// commits the task states agents report.
//
// Only the leader runs a dispatcher (Run, started and stopped with
// leadership); followers answer Unavailable and name the leader, and the
// agent moves there. An agent's duties, in order:
//
//  1. Open a Session; its first message carries the session ID every other
//     call names. A call naming a session that is no longer current fails
//     with NotFound: open a new session.
//  2. Heartbeat within every period, or the node is declared DOWN after
//     three missed periods.
//  3. Open Assignments: the first message is COMPLETE (every task of the
//     node assigned or past it, including those to stop), then INCREMENTAL
//     messages carry tasks whose desired state or spec changed, new
//     assignments, and removed task IDs. COMPLETE is read after a raft read
//     barrier, so it holds every assignment committed before it was built;
//     a manager that cannot confirm that (deposed without knowing it) ends
//     the stream Unavailable instead: reconnect.
//  4. Report task states with UpdateTaskStatus. The call returns once the
//     states are committed; after a new session (a new leader) report the
//     latest state of every task again, since a failed call committed
//     nothing the agent may count on.
//
// It imports api, orchestrator/store and orchestrator/ca.
package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// DefaultHeartbeatPeriod is used when the cluster spec sets none.
const DefaultHeartbeatPeriod = 5 * time.Second

// storeWriteTimeout bounds a node status write: one lost in a leader
// change must not hold a session open for ever.
const storeWriteTimeout = 10 * time.Second

// missedHeartbeats is how many periods a node may stay silent before it is
// declared down.
const missedHeartbeats = 3

// Cluster is what the dispatcher needs to know of raft.
type Cluster interface {
	// LeaderAddr is the current leader's remote API address, "" if none.
	LeaderAddr() string
	// ManagerAddrs lists every manager's remote API address.
	ManagerAddrs() []string
}

// Dispatcher implements api.DispatcherServer.
type Dispatcher struct {
	api.UnimplementedDispatcherServer
	store   *store.MemoryStore
	cluster Cluster
	log     *slog.Logger

	mu       sync.Mutex
	running  context.Context // nil unless this manager leads
	period   time.Duration
	sessions map[string]*session // by node ID
	// deadlines holds, by node ID, when a node without a heartbeat is
	// declared down: sessions and nodes inherited from an older leader.
	deadlines map[string]time.Time
	// statuses queues reported task states until the next commit.
	statuses *statusQueue
	// endpoints are the networks' endpoint views (endpoints.go).
	endpoints *endpointTable
	// services are the services' mesh views (services.go).
	services *serviceTable
	// periodChanged wakes Run to retime its expiry ticker.
	periodChanged chan struct{}
}

type session struct {
	id      string
	nodeID  string
	changed chan struct{} // signalled when the session must resend
	done    chan struct{} // closed when the session is replaced or expired
	assign  *assignQueue  // the open Assignments stream's queue, nil if none
	// queries are the dataplane queries waiting for the agent, by ID (dataplanequery.go).
	queries map[string]*pendingQuery
}

// New returns a dispatcher that serves nothing until Run.
func New(s *store.MemoryStore, c Cluster, log *slog.Logger) *Dispatcher {
	return &Dispatcher{store: s, cluster: c, log: log, periodChanged: make(chan struct{}, 1)}
}

// Run serves sessions until ctx ends; the manager calls it while this node
// is the leader.
func (d *Dispatcher) Run(ctx context.Context) error {
	period := DefaultHeartbeatPeriod
	if err := d.store.ViewLinearizable(ctx, func(store.ReadTx) {}); err != nil {
		return fmt.Errorf("dispatcher: catch up with the log: %w", err)
	}
	// Read the nodes and start watching in one step, so no change falls
	// between the two.
	var nodes []*api.Node
	endpoints := newEndpointTable()
	services := newServiceTable()
	watch := d.store.ViewAndWatch(ctx, func(tx store.ReadTx) {
		nodes = tx.Nodes()
		if cs := tx.Clusters(); len(cs) > 0 {
			period = heartbeatPeriod(cs[0])
		}
		endpoints.rebuild(tx.SharedTasks(), nodes)
		services.rebuild(tx.Services(), tx.SharedBindings())
	})
	statuses := newStatusQueue()
	d.mu.Lock()
	d.running = ctx
	d.period = period
	d.sessions = make(map[string]*session)
	d.deadlines = make(map[string]time.Time)
	d.statuses = statuses
	d.endpoints = endpoints
	d.services = services
	// Nodes that were up under the previous leader get the usual grace to
	// find this one before they are declared down.
	grace := time.Now().Add(missedHeartbeats * period)
	for _, n := range nodes {
		if n.Status.GetState() != api.NodeState_NODE_STATE_DOWN {
			d.deadlines[n.Id] = grace
		}
	}
	d.mu.Unlock()
	var flusher sync.WaitGroup
	flusher.Go(func() { d.flushStatuses(ctx, statuses) })
	d.log.Info("dispatcher started", "heartbeat_period", period)

	defer func() {
		d.mu.Lock()
		for _, s := range d.sessions {
			close(s.done)
		}
		d.running, d.sessions, d.deadlines, d.statuses, d.endpoints, d.services = nil, nil, nil, nil, nil, nil
		d.mu.Unlock()
		flusher.Wait()
		statuses.close(status.Error(codes.Unavailable, "this manager stopped leading before the task states were committed; report them to the new leader"))
		d.log.Info("dispatcher stopped")
	}()

	ticker := time.NewTicker(max(period/2, time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case b, ok := <-watch:
			if !ok {
				// Fallen behind: watch again and resend everything, so
				// nothing between the two watches is lost.
				watch = d.store.Watch(ctx)
				d.resyncAll()
				continue
			}
			d.noteChanges(collect(b, watch))
		case now := <-ticker.C:
			d.expire(ctx, now)
		case <-d.periodChanged:
			d.mu.Lock()
			p := d.period
			d.mu.Unlock()
			ticker.Reset(max(p/2, time.Millisecond))
		}
	}
}

// maxCoalescedBatches bounds how many store batches one pass of Run routes
// before it wakes the streams: enough to coalesce a burst, few enough that
// heartbeats are not starved.
const maxCoalescedBatches = 256

// collect returns b and the batches already waiting behind it, so a burst
// of commits reaches each stream as one message.
func collect(b store.Batch, watch <-chan store.Batch) []store.Batch {
	batches := []store.Batch{b}
	for len(batches) < maxCoalescedBatches {
		select {
		case next, ok := <-watch:
			if !ok {
				return batches // the closed channel is seen by Run next
			}
			batches = append(batches, next)
		default:
			return batches
		}
	}
	return batches
}

// noteChanges wakes the sessions of nodes whose record changed and queues
// task changes on the Assignments streams of the nodes they concern.
func (d *Dispatcher) noteChanges(batches []store.Batch) {
	// Decide what each task change means to agents before taking the
	// lock that sessions and heartbeats share.
	var routes []taskRoute
	for _, b := range batches {
		for _, ev := range b.Events {
			if ev.Kind == store.KindTask {
				routes = appendTaskRoutes(routes, ev)
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var epChanges []epChange
	var svcChanges []svcChange
	for _, b := range batches {
		if b.Restored {
			d.resyncLocked()
			epChanges, svcChanges = nil, nil // every stream resends the whole tables
			continue
		}
		for _, ev := range b.Events {
			switch ev.Kind {
			case store.KindNode:
				d.noteNode(ev)
			case store.KindCluster:
				d.noteCluster(ev)
			}
			epChanges = append(epChanges, d.endpoints.noteEvent(ev)...)
			svcChanges = append(svcChanges, d.services.noteEvent(ev)...)
		}
	}
	var goneNets []string
	for _, b := range batches {
		for _, ev := range b.Events {
			if ev.Kind == store.KindNetwork && ev.Action == api.StoreAction_KIND_DELETE {
				goneNets = append(goneNets, ev.Object.GetId())
			}
		}
	}
	woken := make(map[*assignQueue]struct{})
	if len(epChanges) > 0 || len(svcChanges) > 0 || len(goneNets) > 0 {
		for _, s := range d.sessions {
			if s.assign == nil {
				continue
			}
			s.assign.putEndpoints(epChanges)
			s.assign.putServices(svcChanges)
			for _, id := range goneNets {
				s.assign.putRemovedNetwork(id)
			}
			woken[s.assign] = struct{}{}
		}
	}
	for _, r := range routes {
		q := d.assignQueueOf(r.nodeID)
		if q == nil {
			continue
		}
		if r.task != nil {
			q.put(r.task)
		} else {
			q.remove(r.removeID)
		}
		woken[q] = struct{}{}
	}
	for q := range woken {
		signal(q.wake)
	}
}

// heartbeatPeriod is the cluster's configured period, or the default.
func heartbeatPeriod(c *api.Cluster) time.Duration {
	if p := c.GetSpec().GetDispatcher().GetHeartbeatPeriod(); p != nil && p.AsDuration() > 0 {
		return p.AsDuration()
	}
	return DefaultHeartbeatPeriod
}

// noteCluster follows the cluster's heartbeat period: the cluster object
// may be written after the dispatcher started (a new cluster's first
// leader) or changed by an operator. Sessions resend their message with
// the new period; d.mu is held.
func (d *Dispatcher) noteCluster(ev store.Event) {
	if ev.Action == api.StoreAction_KIND_DELETE {
		return
	}
	c, _ := ev.Object.(*api.Cluster)
	p := heartbeatPeriod(c)
	if p == d.period {
		return
	}
	d.log.Info("heartbeat period changed", "from", d.period, "to", p)
	d.period = p
	// Deadlines set under the old period would hold a node up (or let it
	// go) on the wrong clock: give everyone one grace of the new one.
	grace := time.Now().Add(missedHeartbeats * p)
	for id := range d.deadlines {
		d.deadlines[id] = grace
	}
	for _, s := range d.sessions {
		signal(s.changed)
	}
	signal(d.periodChanged)
}

// noteNode handles a change of a node record; d.mu is held.
func (d *Dispatcher) noteNode(ev store.Event) {
	id := ev.Object.GetId()
	s, ok := d.sessions[id]
	if !ok {
		return
	}
	if ev.Action == api.StoreAction_KIND_DELETE {
		// A removed node's session ends now, not when its heartbeats
		// would have run out.
		close(s.done)
		delete(d.sessions, id)
		delete(d.deadlines, id)
		return
	}
	signal(s.changed)
}

// resyncAll makes every session resend its message and every Assignments
// stream resend all its tasks: the store was replaced or a watch was lost.
func (d *Dispatcher) resyncAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resyncLocked()
}

func (d *Dispatcher) resyncLocked() {
	d.store.View(func(tx store.ReadTx) {
		d.endpoints.rebuild(tx.SharedTasks(), tx.Nodes())
		d.services.rebuild(tx.Services(), tx.SharedBindings())
	})
	for _, s := range d.sessions {
		signal(s.changed)
		if s.assign != nil {
			s.assign.resync()
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// expire declares down every node whose heartbeat deadline passed.
func (d *Dispatcher) expire(ctx context.Context, now time.Time) {
	d.mu.Lock()
	var expired []string
	for id, deadline := range d.deadlines {
		if now.After(deadline) {
			expired = append(expired, id)
			delete(d.deadlines, id)
			if s, ok := d.sessions[id]; ok {
				close(s.done)
				delete(d.sessions, id)
			}
		}
	}
	d.mu.Unlock()
	for _, id := range expired {
		if d.hasSession(id) {
			continue // it came back meanwhile
		}
		d.log.Warn("node missed its heartbeats", "node", id)
		uctx, cancel := context.WithTimeout(ctx, storeWriteTimeout)
		err := d.setNodeState(uctx, id, api.NodeState_NODE_STATE_DOWN, "heartbeat failure", "", nil)
		if err == nil && d.hasSession(id) {
			// It opened a session while DOWN was being written; its
			// READY may have been read before DOWN landed.
			err = d.setNodeState(uctx, id, api.NodeState_NODE_STATE_READY, "", "", nil)
		}
		cancel()
		if err != nil {
			d.log.Error("mark node down", "node", id, "err", err)
		}
	}
}

func (d *Dispatcher) hasSession(nodeID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.sessions[nodeID]
	return ok
}

// setNodeState records a node's state; desc and addr are kept when empty.
func (d *Dispatcher) setNodeState(ctx context.Context, nodeID string, state api.NodeState, msg, addr string, desc *api.NodeDescription) error {
	return d.store.Update(ctx, func(tx store.Tx) error {
		n := tx.Node(nodeID)
		if n == nil {
			return nil // removed meanwhile
		}
		next := proto.Clone(n).(*api.Node)
		if next.Status == nil {
			next.Status = &api.NodeStatus{}
		}
		next.Status.State = state
		next.Status.Message = msg
		if addr != "" {
			next.Status.Addr = addr
		}
		if desc != nil {
			next.Description = desc
		}
		if proto.Equal(n, next) {
			return nil
		}
		return tx.Update(next)
	})
}
