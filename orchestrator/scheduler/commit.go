package scheduler

// This file owns writing a pass's decisions: tasks ASSIGNED to their node,
// and new reasons for tasks left pending, in as few store transactions as
// the size bound allows, committed concurrently. A task that changed since the pass read it is left
// alone, and the view forgets the placement it assumed for it.

import (
	"context"
	"fmt"
	"sync"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// maxTasksPerUpdate bounds the tasks written by one store transaction, so
// one raft entry stays a few megabytes at most.
const maxTasksPerUpdate = 2000

// assignedMessage is an assigned task's status message.
const assignedMessage = "scheduler assigned task to node"

// decision is what a pass writes for one task.
type decision struct {
	task   *api.Task // as the pass read it
	nodeID string    // set: assign the task there; empty: leave it pending
	reason string    // why it stays pending
}

// commit writes res, planned from pending. It returns how many tasks it
// wrote and whether some decision was dropped: its task changed meanwhile,
// or a write failed. A pending task whose message would not change is not
// written.
func (s *Scheduler) commit(ctx context.Context, pending []*api.Task, res Result) (written int, dropped bool) {
	byID := make(map[string]*api.Task, len(pending))
	for _, t := range pending {
		byID[t.Id] = t
	}
	decisions := make([]decision, 0, len(res.Assigned)+len(res.Unplaced))
	for _, a := range res.Assigned {
		decisions = append(decisions, decision{task: byID[a.TaskID], nodeID: a.NodeID})
	}
	for _, u := range res.Unplaced {
		if t := byID[u.TaskID]; t.GetStatus().GetMessage() != u.Reason {
			decisions = append(decisions, decision{task: t, reason: u.Reason})
		}
	}
	// The chunks touch disjoint tasks, so they are committed concurrently:
	// raft carries them in flight together instead of one round trip
	// after another. The view is changed here, on the scheduler's
	// goroutine, once every write is back.
	type outcome struct {
		written int
		changed []int
		err     error
	}
	var chunks [][]decision
	for start := 0; start < len(decisions); start += maxTasksPerUpdate {
		chunks = append(chunks, decisions[start:min(start+maxTasksPerUpdate, len(decisions))])
	}
	outcomes := make([]outcome, len(chunks))
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		wg.Go(func() {
			o := &outcomes[i]
			o.written, o.changed, o.err = s.write(ctx, chunk)
		})
	}
	wg.Wait()
	for i, chunk := range chunks {
		o := outcomes[i]
		written += o.written
		if o.err != nil {
			if ctx.Err() == nil {
				s.log.Warn("scheduling decisions not written; retrying on the next pass", "err", o.err)
			}
			// Forget the placements assumed for what was not written.
			for _, d := range chunk {
				if d.nodeID != "" {
					s.view.setTask(d.task)
				}
			}
			dropped = true
			continue
		}
		for _, j := range o.changed {
			if d := chunk[j]; d.nodeID != "" {
				s.view.setTask(d.task)
			}
		}
		dropped = dropped || len(o.changed) > 0
	}
	return written, dropped
}

// write commits one chunk of decisions as one transaction. It returns how
// many tasks it changed and the indexes of the decisions it left out
// because their task changed since the pass read it, or their node no
// longer takes tasks. It must not touch the
// view: chunks are written concurrently.
func (s *Scheduler) write(ctx context.Context, chunk []decision) (written int, changed []int, err error) {
	now := s.now()
	err = s.store.Update(ctx, func(tx store.Tx) error {
		changed, written = changed[:0], 0
		// The node as the store has it now, not as the pass saw it: one
		// that went down or was drained meanwhile gets nothing (the view
		// hears of it next and the task is planned again).
		fit := make(map[string]bool)
		nodeFit := func(id string) bool {
			ok, seen := fit[id]
			if !seen {
				n := tx.Node(id)
				ok = takesNewTasks(n) && networkReady(n)
				fit[id] = ok
			}
			return ok
		}
		for i, d := range chunk {
			cur := tx.Task(d.task.Id)
			if !unchanged(cur, d.task) || (d.nodeID != "" && !nodeFit(d.nodeID)) {
				changed = append(changed, i)
				continue
			}
			if d.nodeID != "" {
				cur.NodeId = d.nodeID
				reconcile.SetStatus(cur, api.TaskState_TASK_STATE_ASSIGNED, assignedMessage, now)
			} else if cur.GetStatus().GetMessage() != d.reason {
				reconcile.SetStatus(cur, api.TaskState_TASK_STATE_PENDING, d.reason, now)
			} else {
				continue // already says so
			}
			if err := tx.Update(cur); err != nil {
				return fmt.Errorf("task %s: %w", d.task.Id, err)
			}
			written++
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("write %d scheduling decisions: %w", len(chunk), err)
	}
	return written, changed, nil
}

// unchanged reports whether cur, the task as the store has it now, is
// still the pending task the pass planned: anything else (assigned by
// someone else, told to stop, deleted, another spec) must not be touched.
func unchanged(cur, planned *api.Task) bool {
	return cur != nil && schedulable(cur) &&
		cur.NodeId == planned.NodeId && cur.SpecVersion == planned.SpecVersion
}
