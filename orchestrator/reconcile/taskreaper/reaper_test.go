package taskreaper

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	pending  = api.TaskState_TASK_STATE_PENDING
	assigned = api.TaskState_TASK_STATE_ASSIGNED
	running  = api.TaskState_TASK_STATE_RUNNING
	complete = api.TaskState_TASK_STATE_COMPLETE
	shutdown = api.TaskState_TASK_STATE_SHUTDOWN
	failed   = api.TaskState_TASK_STATE_FAILED
	remove   = api.TaskState_TASK_STATE_REMOVE
)

func service(id string, maxAttempts uint64) *api.Service {
	return reconciletest.ReplicatedService(id, 1, reconciletest.WithRestart(&api.RestartPolicy{MaxAttempts: maxAttempts}))
}

func task(id, svc string, slot uint64, nodeID string, desired, observed api.TaskState, end time.Time) *api.Task {
	return &api.Task{
		Id: id, ServiceId: svc, ServiceName: svc, Slot: slot, NodeId: nodeID, DesiredState: desired,
		Status: &api.TaskStatus{State: observed, Timestamp: timestamppb.New(end)},
	}
}

func nodeIn(id string, st api.NodeState) *api.Node {
	return reconciletest.Node(id, reconciletest.WithState(st))
}

func TestReapable(t *testing.T) {
	nodes := []store.Object{nodeIn("up", api.NodeState_NODE_STATE_READY), nodeIn("down", api.NodeState_NODE_STATE_DOWN)}
	for _, tc := range []struct {
		name   string
		svc    *api.Service // nil: the service was deleted
		task   *api.Task
		reaped bool
	}{
		{"removed and stopped", service("s", 0), task("t", "s", 1, "up", remove, shutdown, t0), true},
		{"removed, still running", service("s", 0), task("t", "s", 1, "up", remove, running, t0), false},
		{"removed, node down", service("s", 0), task("t", "s", 1, "down", remove, running, t0), true},
		{"removed, node gone", service("s", 0), task("t", "s", 1, "gone", remove, running, t0), true},
		{"removed, never assigned", service("s", 0), task("t", "s", 1, "", remove, pending, t0), true},
		{"removed, assigned", service("s", 0), task("t", "s", 1, "up", remove, assigned, t0), false},
		{"meant to run", service("s", 0), task("t", "s", 1, "up", running, failed, t0), false},
		{"completed for good", service("s", 0), task("t", "s", 1, "up", complete, complete, t0), false},
		{"deleted service, stopped", nil, task("t", "s", 1, "up", shutdown, shutdown, t0), true},
		{"deleted service, running", nil, task("t", "s", 1, "up", shutdown, running, t0), false},
		{"shut down, within history", service("s", 0), task("t", "s", 1, "up", shutdown, shutdown, t0), false},
		{"global task of a gone node", service("s", 0), task("t", "s", 0, "gone", shutdown, running, t0), true},
		{"global task of a down node", service("s", 0), task("t", "s", 0, "down", shutdown, running, t0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storetest.New()
			objs := append(slices.Clone(nodes), tc.task)
			if tc.svc != nil {
				objs = append(objs, tc.svc)
			}
			reconciletest.Create(t, s, objs...)
			var got []*api.Task
			s.View(func(tx store.ReadTx) { got = reapable(tx, "s") })
			if reaped := len(got) == 1; reaped != tc.reaped {
				t.Fatalf("reaped: %v, want %v", reaped, tc.reaped)
			}
		})
	}
}

func TestHistoryBound(t *testing.T) {
	for _, tc := range []struct {
		name        string
		limit       int64 // cluster's; 0: none
		maxAttempts uint64
		finished    int
		wantKept    int
	}{
		{"default limit", 0, 0, 8, reconcile.DefaultTaskHistory},
		{"cluster limit", 2, 0, 8, 2},
		{"under the limit", 3, 0, 2, 2},
		{"restart attempts need more", 2, 6, 8, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storetest.New()
			objs := []store.Object{
				service("s", tc.maxAttempts),
				nodeIn("up", api.NodeState_NODE_STATE_READY),
				task("current", "s", 1, "up", running, running, t0),
				task("other-slot", "s", 2, "up", shutdown, failed, t0.Add(-time.Hour)),
			}
			if tc.limit > 0 {
				objs = append(objs, &api.Cluster{Id: "c", Spec: &api.ClusterSpec{
					Orchestration: &api.OrchestrationConfig{TaskHistoryRetentionLimit: tc.limit},
				}})
			}
			for i := range tc.finished {
				objs = append(objs, task(fmt.Sprintf("old-%02d", i), "s", 1, "up", shutdown, failed, t0.Add(time.Duration(i)*time.Second)))
			}
			reconciletest.Create(t, s, objs...)
			var got []*api.Task
			s.View(func(tx store.ReadTx) { got = reapable(tx, "s") })
			if n := tc.finished - len(got); n != tc.wantKept {
				t.Fatalf("kept %d finished tasks, want %d", n, tc.wantKept)
			}
			for _, d := range got {
				var i int
				if _, err := fmt.Sscanf(d.Id, "old-%02d", &i); err != nil {
					t.Fatalf("reaped %s", d.Id)
				}
				if i >= tc.finished-tc.wantKept {
					t.Errorf("reaped %s, one of the newest", d.Id)
				}
			}
		})
	}
}

func TestRunReapsInBatches(t *testing.T) {
	s, p := storetest.NewWithProposer()
	objs := []store.Object{service("s", 0), nodeIn("up", api.NodeState_NODE_STATE_READY)}
	for i := range 3000 {
		objs = append(objs, task(fmt.Sprintf("gone-%04d", i), "s", uint64(i+1), "up", remove, shutdown, t0))
	}
	objs = append(objs, task("live", "s", 9999, "up", running, running, t0))
	reconciletest.Create(t, s, objs...)
	before := p.Proposals()

	reconciletest.Start(t, map[string]func(context.Context) error{"reaper": New(s, slog.New(slog.DiscardHandler)).Run})
	reconciletest.WaitFor(t, s, "the reaping", func(tx store.ReadTx) bool { return len(tx.Tasks()) == 1 })
	if n := p.Proposals() - before; n > 3 {
		t.Errorf("%d transactions to delete 3,000 tasks, want at most 3", n)
	}
}

func TestRunFollowsEvents(t *testing.T) {
	s := storetest.New()
	reconciletest.Create(t, s, service("s", 0), nodeIn("up", api.NodeState_NODE_STATE_READY),
		task("t", "s", 1, "up", remove, running, t0))
	reconciletest.Start(t, map[string]func(context.Context) error{"reaper": New(s, slog.New(slog.DiscardHandler)).Run})
	// The agent reports the task stopped: the reaper deletes it.
	reconciletest.Update(t, s, func(tx store.Tx) error {
		t := tx.Task("t")
		reconcile.SetStatus(t, shutdown, "stopped", t0)
		return tx.Update(t)
	})
	reconciletest.WaitFor(t, s, "the stopped task reaped", func(tx store.ReadTx) bool { return tx.Task("t") == nil })
}
