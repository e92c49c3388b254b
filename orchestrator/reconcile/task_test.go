package reconcile_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
)

const (
	pending  = api.TaskState_TASK_STATE_PENDING
	starting = api.TaskState_TASK_STATE_STARTING
	running  = api.TaskState_TASK_STATE_RUNNING
	complete = api.TaskState_TASK_STATE_COMPLETE
	shutdown = api.TaskState_TASK_STATE_SHUTDOWN
	failed   = api.TaskState_TASK_STATE_FAILED
	remove   = api.TaskState_TASK_STATE_REMOVE
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// slotTask is a task of slot 1 made from spec version, created age before
// t0, desired and observed as given.
func slotTask(id string, version uint64, desired, observed api.TaskState, age time.Duration) *api.Task {
	return &api.Task{
		Id: id, ServiceId: "web", Slot: 1, SpecVersion: version, DesiredState: desired,
		Status: &api.TaskStatus{State: observed},
		Meta:   &api.Meta{CreatedAt: timestamppb.New(t0.Add(-age))},
	}
}

func ids(ts []*api.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Id)
	}
	slices.Sort(out)
	return out
}

func TestHolders(t *testing.T) {
	for _, tc := range []struct {
		name        string
		slot        reconcile.Slot
		keep, extra []string
	}{
		{"one task", reconcile.Slot{slotTask("a", 1, running, running, 0)}, []string{"a"}, nil},
		{"running beats earlier states", reconcile.Slot{
			slotTask("a", 1, running, pending, time.Hour),
			slotTask("b", 1, running, running, 2*time.Hour),
			slotTask("c", 1, running, starting, 0),
		}, []string{"b"}, []string{"a", "c"}},
		{"then the newest", reconcile.Slot{
			slotTask("a", 1, running, running, time.Minute),
			slotTask("b", 1, running, running, time.Hour),
		}, []string{"a"}, []string{"b"}},
		{"meant to run beats completed for good", reconcile.Slot{
			slotTask("a", 1, complete, complete, 0),
			slotTask("b", 1, running, pending, time.Hour),
		}, []string{"b"}, []string{"a"}},
		{"a live task beats one that ended", reconcile.Slot{
			slotTask("a", 1, running, failed, 0),
			slotTask("b", 1, running, pending, time.Hour),
		}, []string{"b"}, []string{"a"}},
		{"a start-first pair is kept", reconcile.Slot{
			slotTask("old", 1, running, running, time.Hour),
			slotTask("new", 2, running, starting, 0),
		}, []string{"new", "old"}, nil},
		{"one per spec version", reconcile.Slot{
			slotTask("old", 1, running, running, time.Hour),
			slotTask("new", 2, running, running, time.Minute),
			slotTask("dup", 2, running, pending, 0),
		}, []string{"new", "old"}, []string{"dup"}},
		{"tasks not holding the slot are left alone", reconcile.Slot{
			slotTask("a", 1, running, pending, 0),
			slotTask("b", 1, shutdown, running, 0),
			slotTask("c", 1, remove, running, 0),
		}, []string{"a"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep, extra := reconcile.Holders(tc.slot)
			if got := ids(keep); !slices.Equal(got, tc.keep) {
				t.Errorf("keep %v, want %v", got, tc.keep)
			}
			if got := ids(extra); !slices.Equal(got, tc.extra) {
				t.Errorf("extra %v, want %v", got, tc.extra)
			}
			// The choice does not depend on the order tasks were read in.
			rev := slices.Clone(tc.slot)
			slices.Reverse(rev)
			if keep2, _ := reconcile.Holders(rev); !slices.Equal(ids(keep2), ids(keep)) {
				t.Errorf("reversed slot keeps %v, want %v", ids(keep2), ids(keep))
			}
		})
	}
}
