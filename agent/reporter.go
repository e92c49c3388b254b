package agent

// This file owns status reporting: runners hand the reporter each state
// change, and it sends them to the dispatcher in batches — one
// UpdateTaskStatus per burst, keeping only the latest state of each task —
// retrying what failed. It remembers the latest state of every task so a
// new session (a new leader) hears all of them again.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

const (
	// reportWindow is the least time between the starts of two sends:
	// state changes arriving meanwhile go together in the next. The first
	// change after a quiet period is sent at once.
	reportWindow = 50 * time.Millisecond
	// maxReportBatch bounds the states one call carries.
	maxReportBatch = 1000
	// reportRetry spaces retries of a call that failed but left the
	// session usable.
	reportRetry = time.Second
)

// reporter batches task states for the dispatcher.
type reporter struct {
	wake chan struct{} // signalled when a state is pending

	mu      sync.Mutex
	latest  map[string]*api.TaskStatus // every live task's latest state
	pending map[string]*api.TaskStatus // states not yet acknowledged
}

func newReporter() *reporter {
	return &reporter{
		wake:    make(chan struct{}, 1),
		latest:  make(map[string]*api.TaskStatus),
		pending: make(map[string]*api.TaskStatus),
	}
}

// report queues task id's new state.
func (r *reporter) report(id string, st *api.TaskStatus) {
	r.mu.Lock()
	r.latest[id] = st
	r.pending[id] = st
	r.mu.Unlock()
	signal(r.wake)
}

// forget drops a removed task.
func (r *reporter) forget(id string) {
	r.mu.Lock()
	delete(r.latest, id)
	delete(r.pending, id)
	r.mu.Unlock()
}

// take removes up to maxReportBatch pending states and returns them.
func (r *reporter) take() []*api.TaskStatusUpdate {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := slices.Sorted(maps.Keys(r.pending))
	if len(ids) > maxReportBatch {
		ids = ids[:maxReportBatch]
	}
	updates := make([]*api.TaskStatusUpdate, 0, len(ids))
	for _, id := range ids {
		updates = append(updates, &api.TaskStatusUpdate{TaskId: id, Status: r.pending[id]})
		delete(r.pending, id)
	}
	return updates
}

// requeue puts back states whose call failed, unless a newer state of the
// task is pending or the task was forgotten.
func (r *reporter) requeue(updates []*api.TaskStatusUpdate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range updates {
		if _, newer := r.pending[u.TaskId]; newer {
			continue
		}
		if _, live := r.latest[u.TaskId]; live {
			r.pending[u.TaskId] = u.Status
		}
	}
}

// run sends states on one session until ctx ends or a call fails in a way
// only a new session cures. It first queues every task's latest state
// again: the previous session may have ended with states unacknowledged,
// and a new leader must hear them.
func (r *reporter) run(ctx context.Context, client api.DispatcherClient, sessionID string) error {
	r.mu.Lock()
	maps.Copy(r.pending, r.latest)
	r.mu.Unlock()
	signal(r.wake)

	window := time.NewTimer(reportWindow)
	window.Stop()
	var last time.Time // when the last send started
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		}
		if wait := reportWindow - time.Since(last); wait > 0 {
			window.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-window.C:
			}
		}
		last = time.Now()
		for {
			updates := r.take()
			if len(updates) == 0 {
				break
			}
			_, err := client.UpdateTaskStatus(ctx, &api.UpdateTaskStatusRequest{SessionId: sessionID, Updates: updates})
			if err == nil {
				continue
			}
			r.requeue(updates)
			if endsSession(err) || ctx.Err() != nil {
				return fmt.Errorf("report task states: %w", err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(reportRetry):
			}
			signal(r.wake)
			break
		}
	}
}

// endsSession reports whether a failed call means the session is over.
func endsSession(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.Unavailable, codes.Unauthenticated, codes.PermissionDenied, codes.Canceled:
		return true
	}
	return false
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
