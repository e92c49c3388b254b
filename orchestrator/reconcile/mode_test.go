package reconcile_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

func TestModeNote(t *testing.T) {
	replicated := reconciletest.ReplicatedService("web", 1)
	global := reconciletest.GlobalService("agent")
	task := func(svc string, slot uint64, desired, observed api.TaskState) *api.Task {
		return &api.Task{Id: "t", ServiceId: svc, Slot: slot, DesiredState: desired, Status: &api.TaskStatus{State: observed}}
	}
	upd := func(old, cur *api.Task) store.Event {
		return store.Event{Action: api.StoreAction_KIND_UPDATE, Kind: store.KindTask, Object: cur, Old: old}
	}
	for _, tc := range []struct {
		name string
		mode reconcile.Mode
		ev   store.Event
		want bool
	}{
		{"service of the mode created", reconcile.Replicated,
			store.Event{Action: api.StoreAction_KIND_CREATE, Kind: store.KindService, Object: replicated}, true},
		{"service of another mode", reconcile.Global,
			store.Event{Action: api.StoreAction_KIND_CREATE, Kind: store.KindService, Object: replicated}, false},
		{"service changed mode", reconcile.Global,
			store.Event{Action: api.StoreAction_KIND_UPDATE, Kind: store.KindService, Object: replicated, Old: global}, true},
		{"task created", reconcile.Replicated,
			store.Event{Action: api.StoreAction_KIND_CREATE, Kind: store.KindTask, Object: task("web", 1, running, pending)}, true},
		{"task of another mode", reconcile.Global,
			store.Event{Action: api.StoreAction_KIND_CREATE, Kind: store.KindTask, Object: task("web", 1, running, pending)}, false},
		{"progress report", reconcile.Replicated, upd(task("web", 1, running, pending), task("web", 1, running, running)), false},
		{"new desired state", reconcile.Global, upd(task("agent", 0, running, running), task("agent", 0, shutdown, running)), true},
		{"task meant to run ended", reconcile.Replicated, upd(task("web", 1, running, running), task("web", 1, running, failed)), true},
		{"stopped task ended", reconcile.Replicated, upd(task("web", 1, shutdown, running), task("web", 1, shutdown, shutdown)), false},
		{"node event", reconcile.Global,
			store.Event{Action: api.StoreAction_KIND_CREATE, Kind: store.KindNode, Object: reconciletest.Node("n1")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirty := make(reconcile.Dirty)
			tc.mode.Note(tc.ev, dirty)
			if got := len(dirty) == 1; got != tc.want {
				t.Errorf("marked %v, want a service marked: %v", dirty, tc.want)
			}
		})
	}
}

func TestModeMarkAll(t *testing.T) {
	s := storetest.New()
	reconciletest.Create(t, s,
		reconciletest.ReplicatedService("web", 1), reconciletest.GlobalService("agent"),
		&api.Task{Id: "orphan", ServiceId: "gone", Slot: 1, DesiredState: running},
		&api.Task{Id: "removed", ServiceId: "gone-too", Slot: 1, DesiredState: remove},
		&api.Task{Id: "global-orphan", ServiceId: "gone-global", NodeId: "n1", DesiredState: running},
	)
	for _, tc := range []struct {
		mode reconcile.Mode
		full bool
		want []string
	}{
		{reconcile.Replicated, false, []string{"web"}},
		{reconcile.Replicated, true, []string{"gone", "web"}},
		{reconcile.Global, false, []string{"agent"}},
		{reconcile.Global, true, []string{"agent", "gone-global"}},
	} {
		t.Run(fmt.Sprintf("%v full %v", tc.mode, tc.full), func(t *testing.T) {
			dirty := make(reconcile.Dirty)
			s.View(func(tx store.ReadTx) { tc.mode.MarkAll(tx, dirty, tc.full) })
			if got := slices.Sorted(maps.Keys(dirty)); !slices.Equal(got, tc.want) {
				t.Errorf("marked %v, want %v", got, tc.want)
			}
		})
	}
}
