package dispatcher

// This file owns reported task states: UpdateTaskStatus queues them from
// every session, and one flusher per leadership term commits the queue in
// few store transactions — after a short window that gathers a burst, or
// at once when the queue is large. A call returns when its states are
// committed (or failed to be), so an acknowledged state survives a leader
// change; an agent whose call failed reports again.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/store"
)

const (
	// statusBatchWindow is the least time between the starts of two
	// flushes: reports arriving meanwhile are gathered into the next. The
	// first report after a quiet period is committed at once.
	statusBatchWindow = 50 * time.Millisecond
	// maxStatusBatch is how many queued tasks make the flusher commit at
	// once, and the most tasks one store transaction changes.
	maxStatusBatch = 1000
)

// statusKey names one node's report about one task: a report about the
// same task from another node must not replace it.
type statusKey struct {
	taskID string
	nodeID string
}

// flushResult is the outcome of one flush; done closes when err is set.
type flushResult struct {
	done chan struct{}
	err  error
}

// statusQueue gathers reports between flushes.
type statusQueue struct {
	wake chan struct{} // signalled when the queue stops being empty
	full chan struct{} // signalled when the queue reaches maxStatusBatch

	mu      sync.Mutex
	pending map[statusKey]*api.TaskStatus
	result  *flushResult // what the callers of the pending reports wait on
	closed  error        // set when the term ended: nothing queues any more
}

func newStatusQueue() *statusQueue {
	return &statusQueue{
		wake:    make(chan struct{}, 1),
		full:    make(chan struct{}, 1),
		pending: make(map[statusKey]*api.TaskStatus),
		result:  &flushResult{done: make(chan struct{})},
	}
}

// add queues one node's reports, keeping only the most advanced report of
// each task, and returns the flush to wait on.
func (q *statusQueue) add(nodeID string, updates []*api.TaskStatusUpdate) (*flushResult, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed != nil {
		return nil, q.closed
	}
	wasEmpty := len(q.pending) == 0
	for _, u := range updates {
		k := statusKey{taskID: u.TaskId, nodeID: nodeID}
		if prev, ok := q.pending[k]; ok && prev.State > u.Status.State {
			continue
		}
		q.pending[k] = u.Status
	}
	if wasEmpty && len(q.pending) > 0 {
		signal(q.wake)
	}
	if len(q.pending) >= maxStatusBatch {
		signal(q.full)
	}
	return q.result, nil
}

// take empties the queue and returns its reports and the flush their
// callers wait on.
func (q *statusQueue) take() (map[statusKey]*api.TaskStatus, *flushResult) {
	q.mu.Lock()
	defer q.mu.Unlock()
	pending, result := q.pending, q.result
	q.pending = make(map[statusKey]*api.TaskStatus)
	q.result = &flushResult{done: make(chan struct{})}
	select {
	case <-q.full: // a stale signal would cut the next window short
	default:
	}
	return pending, result
}

// close fails the reports still queued with err and refuses new ones.
func (q *statusQueue) close(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = err
	q.result.err = err
	close(q.result.done)
	clear(q.pending)
}

// UpdateTaskStatus queues the states the calling node reports and returns
// once they are committed. Reports about tasks not assigned to the node, or
// that would move a task's state backwards, are dropped.
func (d *Dispatcher) UpdateTaskStatus(ctx context.Context, req *api.UpdateTaskStatusRequest) (*api.UpdateTaskStatusResponse, error) {
	id, ok := ca.IdentityFromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "task status updates need a node certificate")
	}
	d.mu.Lock()
	if d.running == nil {
		d.mu.Unlock()
		return nil, d.notLeader()
	}
	s, ok := d.sessions[id.NodeID]
	q := d.statuses
	d.mu.Unlock()
	if !ok || s.id != req.SessionId {
		return nil, staleSession(id.NodeID, req.SessionId)
	}
	updates := make([]*api.TaskStatusUpdate, 0, len(req.Updates))
	for _, u := range req.Updates {
		if err := checkReport(u); err != nil {
			d.log.Warn("ignoring a task status report", "node", id.NodeID, "task", u.GetTaskId(), "err", err)
			continue
		}
		if u.Status.Timestamp == nil {
			u.Status.Timestamp = timestamppb.Now()
		}
		updates = append(updates, u)
	}
	if len(updates) == 0 {
		return &api.UpdateTaskStatusResponse{}, nil
	}
	res, err := q.add(id.NodeID, updates)
	if err != nil {
		return nil, err
	}
	select {
	case <-res.done:
		if res.err != nil {
			if _, ok := status.FromError(res.err); ok {
				return nil, res.err
			}
			return nil, status.Errorf(codes.Unavailable, "commit task states: %v", res.err)
		}
		return &api.UpdateTaskStatusResponse{}, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// checkReport refuses a report an agent cannot make: states up to ASSIGNED
// are the managers', and so are REMOVE and ORPHANED.
func checkReport(u *api.TaskStatusUpdate) error {
	switch {
	case u.GetTaskId() == "":
		return fmt.Errorf("no task ID")
	case u.GetStatus() == nil:
		return fmt.Errorf("no status")
	case u.Status.State < api.TaskState_TASK_STATE_ACCEPTED || u.Status.State > api.TaskState_TASK_STATE_REJECTED:
		return fmt.Errorf("an agent cannot report state %v", u.Status.State)
	}
	return nil
}

// flushStatuses commits queued reports until ctx ends. Flushes start at
// least statusBatchWindow apart, so under load each carries everything
// reported since the last; after a quiet period the first report is
// committed at once (a task's RUNNING is not held back for company). The
// wait ends early when maxStatusBatch tasks are queued.
func (d *Dispatcher) flushStatuses(ctx context.Context, q *statusQueue) {
	window := time.NewTimer(statusBatchWindow)
	window.Stop()
	var last time.Time // when the last flush started
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		if wait := statusBatchWindow - time.Since(last); wait > 0 {
			window.Reset(wait)
			select {
			case <-ctx.Done():
				window.Stop()
				return
			case <-window.C:
			case <-q.full:
				window.Stop()
			}
		}
		last = time.Now()
		pending, res := q.take()
		res.err = d.commitStatuses(ctx, pending)
		close(res.done)
	}
}

// statusReport is one queued report.
type statusReport struct {
	statusKey
	status *api.TaskStatus
}

// commitStatuses writes reports in transactions of at most maxStatusBatch
// tasks. Reports that no longer apply are dropped and logged.
func (d *Dispatcher) commitStatuses(ctx context.Context, pending map[statusKey]*api.TaskStatus) error {
	reports := make([]statusReport, 0, len(pending))
	for k, st := range pending {
		reports = append(reports, statusReport{statusKey: k, status: st})
	}
	slices.SortFunc(reports, func(a, b statusReport) int {
		if c := strings.Compare(a.taskID, b.taskID); c != 0 {
			return c
		}
		return strings.Compare(a.nodeID, b.nodeID)
	})
	for chunk := range slices.Chunk(reports, maxStatusBatch) {
		var foreign []statusKey
		var changed int
		err := d.store.Update(ctx, func(tx store.Tx) error {
			foreign, changed = foreign[:0], 0
			for _, r := range chunk {
				t := tx.Task(r.taskID)
				switch {
				case t == nil:
					continue // removed meanwhile: nothing left to record
				case t.NodeId != r.nodeID:
					foreign = append(foreign, r.statusKey)
					continue
				case !statusAdvances(t.Status, r.status):
					continue
				}
				t.Status = r.status
				if err := tx.Update(t); err != nil {
					return err
				}
				changed++
			}
			return nil
		})
		for _, k := range foreign {
			d.log.Warn("ignoring a report about a task of another node", "node", k.nodeID, "task", k.taskID)
		}
		if err != nil {
			return fmt.Errorf("commit %d task states: %w", len(chunk), err)
		}
		d.log.Debug("committed task states", "reports", len(chunk), "changed", changed)
	}
	return nil
}

// statusAdvances reports whether next is news over cur: a later state, or
// the same state with other details. Observed state never moves back.
func statusAdvances(cur, next *api.TaskStatus) bool {
	switch {
	case next.State != cur.GetState():
		return next.State > cur.GetState()
	case next.Message != cur.GetMessage(), next.Err != cur.GetErr(),
		next.ExitCode != cur.GetExitCode(), next.ContainerId != cur.GetContainerId():
		return true
	}
	return false
}
