package dispatcher

// This file owns the Assignments stream: which tasks a node is told about,
// the fan-out of the dispatcher's one store watch to the streams of the
// nodes a change concerns, and the COMPLETE-then-INCREMENTAL messages each
// stream sends. Sessions and heartbeats live in dispatcher.go, reported
// task states in taskstatus.go.

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/store"
)

// assignQueue holds the changes Run routed to one Assignments stream and
// not yet sent. Run fills it under d.mu; the stream drains it.
type assignQueue struct {
	wake chan struct{} // signalled when there is something to send
	done chan struct{} // closed when a newer stream of the session replaces this one

	mu      sync.Mutex
	full    bool                        // resend every task and endpoint as a COMPLETE message
	changed map[string]*api.Task        // latest state by task ID; nil: removed
	eps     map[epKey]*api.Endpoint     // endpoints changed; nil: removed
	svcs    map[string]*api.ServiceView // service views changed; nil: removed
	gone    map[string]bool             // networks removed
}

// queued is what take hands a stream: with full, a COMPLETE message is read
// instead of the changes.
type queued struct {
	full    bool
	changed map[string]*api.Task
	eps     map[epKey]*api.Endpoint
	svcs    map[string]*api.ServiceView
	gone    []string
}

func newAssignQueue() *assignQueue {
	// A new stream starts with a COMPLETE message.
	return &assignQueue{wake: make(chan struct{}, 1), done: make(chan struct{}), full: true,
		changed: make(map[string]*api.Task), eps: make(map[epKey]*api.Endpoint),
		svcs: make(map[string]*api.ServiceView), gone: make(map[string]bool)}
}

// putServices queues service view changes.
func (q *assignQueue) putServices(changes []svcChange) {
	q.mu.Lock()
	for _, c := range changes {
		q.svcs[c.id] = c.view
	}
	q.mu.Unlock()
}

// putRemovedNetwork queues the removal of network id.
func (q *assignQueue) putRemovedNetwork(id string) {
	q.mu.Lock()
	q.gone[id] = true
	q.mu.Unlock()
}

// putEndpoints queues endpoint changes.
func (q *assignQueue) putEndpoints(changes []epChange) {
	q.mu.Lock()
	for _, c := range changes {
		q.eps[c.key] = c.ep
	}
	q.mu.Unlock()
}

// put queues t (read-only: it is the store's event object).
func (q *assignQueue) put(t *api.Task) {
	q.mu.Lock()
	q.changed[t.Id] = t
	q.mu.Unlock()
}

func (q *assignQueue) remove(id string) {
	q.mu.Lock()
	q.changed[id] = nil
	q.mu.Unlock()
}

// resync makes the stream resend everything.
func (q *assignQueue) resync() {
	q.mu.Lock()
	q.full = true
	clear(q.changed)
	clear(q.eps)
	clear(q.svcs)
	clear(q.gone)
	q.mu.Unlock()
	signal(q.wake)
}

// dropViewChanges forgets the queued endpoint and service view changes: the
// stream is reading the whole tables, which hold them all. Called with d.mu
// held, under which every change is applied to the tables and queued
// together.
func (q *assignQueue) dropViewChanges() {
	q.mu.Lock()
	clear(q.eps)
	clear(q.svcs)
	q.mu.Unlock()
}

// take returns what is queued and empties the queue. With full, the
// changes are left out: a COMPLETE message reads everything after take.
func (q *assignQueue) take() queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := queued{full: q.full, changed: q.changed, eps: q.eps, svcs: q.svcs, gone: slices.Sorted(maps.Keys(q.gone))}
	q.full = false
	q.changed = make(map[string]*api.Task)
	q.eps = make(map[epKey]*api.Endpoint)
	q.svcs = make(map[string]*api.ServiceView)
	q.gone = make(map[string]bool)
	return out
}

// visible reports whether the agent of t's node is told about t: it has a
// node and the scheduler (or the global reconciler) let it past PENDING,
// and it was not orphaned. An ORPHANED task's slot and address went to a
// successor while its node was down: when the node returns, its agent
// removes it (containers, sandbox, attachments) as it does a deleted task.
func visible(t *api.Task) bool {
	state := t.GetStatus().GetState()
	return t != nil && t.NodeId != "" && state >= api.TaskState_TASK_STATE_ASSIGNED && state != api.TaskState_TASK_STATE_ORPHANED
}

// agentNeeds reports whether the change from old to cur is one the agent
// must hear about. Status changes are the agent's own reports: they are
// not sent back.
func agentNeeds(old, cur *api.Task) bool {
	return old.DesiredState != cur.DesiredState ||
		old.SpecVersion != cur.SpecVersion ||
		!proto.Equal(old.Spec, cur.Spec) ||
		!proto.Equal(old.Endpoint, cur.Endpoint)
}

// taskRoute is one change an agent must hear of: task to send, or the ID
// of a task to remove, on nodeID's stream.
type taskRoute struct {
	nodeID   string
	task     *api.Task
	removeID string
}

// appendTaskRoutes appends what a task event means to the agents of the
// nodes it concerns.
func appendTaskRoutes(routes []taskRoute, ev store.Event) []taskRoute {
	var cur, old *api.Task
	if ev.Action == api.StoreAction_KIND_DELETE {
		old, _ = ev.Object.(*api.Task)
	} else {
		cur, _ = ev.Object.(*api.Task)
		old, _ = ev.Old.(*api.Task)
	}
	if visible(old) && (!visible(cur) || cur.NodeId != old.NodeId) {
		routes = append(routes, taskRoute{nodeID: old.NodeId, removeID: old.Id})
	}
	if !visible(cur) {
		return routes
	}
	if visible(old) && old.NodeId == cur.NodeId && !agentNeeds(old, cur) {
		return routes
	}
	return append(routes, taskRoute{nodeID: cur.NodeId, task: cur})
}

// assignQueueOf returns the queue of nodeID's open stream; d.mu is held.
func (d *Dispatcher) assignQueueOf(nodeID string) *assignQueue {
	if s := d.sessions[nodeID]; s != nil {
		return s.assign
	}
	return nil
}

// Assignments streams the calling node's tasks: first a COMPLETE message
// with every task assigned to it, then INCREMENTAL messages with changed
// and removed tasks, coalescing the commits that arrive while a message is
// being sent. It ends when the session does.
func (d *Dispatcher) Assignments(req *api.AssignmentsRequest, stream api.Dispatcher_AssignmentsServer) error {
	ctx := stream.Context()
	id, ok := ca.IdentityFromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "assignments need a node certificate")
	}
	s, q, leaderCtx, err := d.subscribe(id.NodeID, req.SessionId)
	if err != nil {
		return err
	}
	defer d.unsubscribe(s, q)

	// Read barriers end with the stream or with this leadership term, so
	// one a deposed leader cannot pass does not hold the stream open.
	readCtx, cancelReads := context.WithCancel(ctx)
	defer cancelReads()
	stopReads := context.AfterFunc(leaderCtx, cancelReads)
	defer stopReads()

	// sent holds the version of every task the agent was sent, so a change
	// routed before the COMPLETE message's read, and so already in it, is
	// not sent again older than the agent has it.
	sent := make(map[string]uint64)
	sentNets := make(map[string]uint64) // network ID → version sent
	for {
		qd := q.take()
		full, gone := qd.full, qd.gone
		var msg *api.AssignmentsMessage
		if full {
			if msg, err = d.completeAssignments(readCtx, s.nodeID, sent); err != nil {
				return completeFailed(ctx, leaderCtx, err)
			}
			// The table, read after the barrier, is as of the commits Run
			// has routed; later ones follow as changes.
			d.mu.Lock()
			if d.endpoints == nil || leaderCtx.Err() != nil {
				// Stopped leading meanwhile: an empty view would make the
				// agent unprogram its overlay.
				d.mu.Unlock()
				return errStoppedLeading
			}
			msg.Endpoints = d.endpoints.all()
			msg.Services = d.services.all()
			// Changes queued since take are in these tables already: sent
			// again after them, they would repeat what the agent has.
			q.dropViewChanges()
			d.mu.Unlock()
		} else {
			msg = incrementalAssignments(qd.changed, sent)
			msg = addEndpointChanges(msg, qd.eps)
			msg = addServiceChanges(msg, qd.svcs)
			if len(gone) > 0 {
				if msg == nil {
					msg = &api.AssignmentsMessage{Type: api.AssignmentsMessage_TYPE_INCREMENTAL}
				}
				msg.RemovedNetworks = gone
				for _, id := range gone {
					delete(sentNets, id)
				}
			}
		}
		if msg != nil {
			if full {
				clear(sentNets)
			}
			// A COMPLETE message carries every network, so the agent can tell which
			// of those it knows were removed while no stream told it.
			d.addNetworks(msg, sentNets, full)
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		select {
		case <-q.wake:
		case <-q.done:
			return status.Error(codes.Unavailable, "a newer assignments stream of this session replaced this one")
		case <-s.done:
			return errSessionEnded
		case <-leaderCtx.Done():
			return errStoppedLeading
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// completeAssignments reads every task of nodeID the agent is told about
// and resets sent to them. The agent stops every task the message leaves
// out, so the read is linearizable: it waits until this manager has
// applied everything committed, which a leader deposed without knowing it
// cannot do (a local read could miss what the new leader assigned).
func (d *Dispatcher) completeAssignments(ctx context.Context, nodeID string, sent map[string]uint64) (*api.AssignmentsMessage, error) {
	var tasks []*api.Task
	if err := d.store.ViewLinearizable(ctx, func(tx store.ReadTx) { tasks = tx.TasksByNode(nodeID) }); err != nil {
		return nil, err
	}
	clear(sent)
	msg := &api.AssignmentsMessage{Type: api.AssignmentsMessage_TYPE_COMPLETE}
	for _, t := range tasks {
		if visible(t) {
			msg.UpdateTasks = append(msg.UpdateTasks, t)
			sent[t.Id] = t.GetMeta().GetVersion()
		}
	}
	return msg, nil
}

// addNetworks adds to msg the networks its tasks attach to, or its endpoints are on (with all,
// every network), that sent
// (network ID → version) does not hold at their current version, and records them there. The
// allocator's records are left out: agents need the network's definition (its VNI for the
// overlay, its subnets for CNI), not its pools.
func (d *Dispatcher) addNetworks(msg *api.AssignmentsMessage, sent map[string]uint64, all bool) {
	var ids []string
	if all {
		d.store.View(func(tx store.ReadTx) {
			for _, n := range tx.Networks() {
				ids = append(ids, n.GetId())
			}
		})
	}
	for _, t := range msg.UpdateTasks {
		for _, att := range t.GetNetworks() {
			ids = append(ids, att.GetNetworkId())
		}
	}
	for _, ep := range msg.Endpoints {
		ids = append(ids, ep.GetNetworkId())
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	d.store.View(func(tx store.ReadTx) {
		for _, id := range ids {
			n := tx.Network(id)
			if n == nil {
				continue // removed meanwhile: the agent fails the task's attach, naming it
			}
			if v, ok := sent[id]; ok && v == n.GetMeta().GetVersion() {
				continue
			}
			sent[id] = n.GetMeta().GetVersion()
			n.Allocation = nil
			msg.Networks = append(msg.Networks, n)
		}
	})
}

// completeFailed is the error that ends a stream whose COMPLETE message
// could not be read: err, from a read barrier whose context ends with the
// stream (ctx) or the leadership term (leaderCtx).
func completeFailed(ctx, leaderCtx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case leaderCtx.Err() != nil:
		return errStoppedLeading
	default:
		return status.Errorf(codes.Unavailable, "cannot confirm this manager has every assignment (%v); reconnect, to the new leader if there is one", err)
	}
}

// incrementalAssignments turns queued changes into a message, nil if none
// is news to the agent.
func incrementalAssignments(changed map[string]*api.Task, sent map[string]uint64) *api.AssignmentsMessage {
	msg := &api.AssignmentsMessage{Type: api.AssignmentsMessage_TYPE_INCREMENTAL}
	for id, t := range changed {
		if t == nil {
			if _, ok := sent[id]; ok {
				msg.RemoveTasks = append(msg.RemoveTasks, id)
				delete(sent, id)
			}
			continue
		}
		v := t.GetMeta().GetVersion()
		if have, ok := sent[id]; ok && v <= have {
			continue
		}
		msg.UpdateTasks = append(msg.UpdateTasks, t)
		sent[id] = v
	}
	if len(msg.UpdateTasks) == 0 && len(msg.RemoveTasks) == 0 {
		return nil
	}
	slices.SortFunc(msg.UpdateTasks, func(a, b *api.Task) int { return strings.Compare(a.Id, b.Id) })
	slices.Sort(msg.RemoveTasks)
	return msg
}

// addEndpointChanges adds the queued endpoint changes eps to msg (nil: a
// message with them alone, nil if there are none).
func addEndpointChanges(msg *api.AssignmentsMessage, eps map[epKey]*api.Endpoint) *api.AssignmentsMessage {
	if len(eps) == 0 {
		return msg
	}
	if msg == nil {
		msg = &api.AssignmentsMessage{Type: api.AssignmentsMessage_TYPE_INCREMENTAL}
	}
	for k, ep := range eps {
		if ep == nil {
			msg.RemovedEndpoints = append(msg.RemovedEndpoints, k.proto())
		} else {
			msg.Endpoints = append(msg.Endpoints, ep)
		}
	}
	slices.SortFunc(msg.Endpoints, func(a, b *api.Endpoint) int {
		return strings.Compare(a.NetworkId+"/"+a.TaskId, b.NetworkId+"/"+b.TaskId)
	})
	slices.SortFunc(msg.RemovedEndpoints, func(a, b *api.EndpointKey) int {
		return strings.Compare(a.NetworkId+"/"+a.TaskId, b.NetworkId+"/"+b.TaskId)
	})
	return msg
}

// addServiceChanges adds the queued service view changes svcs to msg (nil:
// a message with them alone, nil if there are none).
func addServiceChanges(msg *api.AssignmentsMessage, svcs map[string]*api.ServiceView) *api.AssignmentsMessage {
	if len(svcs) == 0 {
		return msg
	}
	if msg == nil {
		msg = &api.AssignmentsMessage{Type: api.AssignmentsMessage_TYPE_INCREMENTAL}
	}
	for id, v := range svcs {
		if v == nil {
			msg.RemovedServices = append(msg.RemovedServices, id)
		} else {
			msg.Services = append(msg.Services, v)
		}
	}
	slices.SortFunc(msg.Services, func(a, b *api.ServiceView) int { return strings.Compare(a.Id, b.Id) })
	slices.Sort(msg.RemovedServices)
	return msg
}

// subscribe attaches a new assignments queue to nodeID's session if
// sessionID names it, replacing an older stream's.
// It also returns the context of the current leadership term.
func (d *Dispatcher) subscribe(nodeID, sessionID string) (*session, *assignQueue, context.Context, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running == nil {
		return nil, nil, nil, d.notLeader()
	}
	s, ok := d.sessions[nodeID]
	if !ok || s.id != sessionID {
		return nil, nil, nil, staleSession(nodeID, sessionID)
	}
	if s.assign != nil {
		close(s.assign.done)
	}
	s.assign = newAssignQueue()
	return s, s.assign, d.running, nil
}

func (d *Dispatcher) unsubscribe(s *session, q *assignQueue) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s.assign == q {
		s.assign = nil
	}
}

// staleSession is the error of a call naming a session that is not the
// node's current one.
func staleSession(nodeID, sessionID string) error {
	return status.Errorf(codes.NotFound, "session %q of node %s is unknown; open a new one", sessionID, nodeID)
}
