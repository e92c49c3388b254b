package reconcile

// This file owns what the two slot owners, the replicated and the global
// reconcilers, share in choosing what to reconcile: the services of their
// mode, the tasks those services made, and which service and task events
// can change a service's pass. Node events differ between the two and stay
// with each.

import (
	"fmt"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// Mode is the kind of service a slot owner reconciles.
type Mode int

const (
	// Replicated services run one task per slot 1..replicas.
	Replicated Mode = iota + 1
	// Global services run one task per eligible node; their tasks have
	// slot 0 and are keyed by node.
	Global
)

func (m Mode) String() string {
	switch m {
	case Replicated:
		return "replicated"
	case Global:
		return "global"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Service reports whether s is of mode m; false for nil.
func (m Mode) Service(s *api.Service) bool {
	if m == Global {
		return IsGlobal(s)
	}
	return IsReplicated(s)
}

// Task reports whether t was made for a service of mode m: a replicated
// task has a slot number, a global one slot 0. (A service's mode can
// change; the owner of its new mode removes the tasks of the old one.)
func (m Mode) Task(t *api.Task) bool {
	return (t.GetSlot() == 0) == (m == Global)
}

// MarkAll marks dirty every service of mode m and, when full, the ID of
// every service that is gone while a task of mode m not yet desired REMOVE
// still names it, so the owner removes that task. Walking every task is
// costly, so only a full read does it; later service deletes arrive as
// events.
func (m Mode) MarkAll(tx store.ReadTx, dirty Dirty, full bool) {
	for _, s := range tx.Services() {
		if m.Service(s) {
			dirty.Mark(s.Id)
		}
	}
	if !full {
		return
	}
	exists := make(map[string]bool)
	for _, t := range tx.SharedTasks() {
		if m.Task(t) && t.DesiredState < api.TaskState_TASK_STATE_REMOVE && !serviceExists(tx, t.ServiceId, exists) {
			dirty.Mark(t.ServiceId)
		}
	}
}

// Note marks dirty the service a service or task event concerns, when it
// is of mode m and the change can alter what the service's pass does. It
// ignores events of other kinds.
func (m Mode) Note(ev store.Event, dirty Dirty) {
	switch ev.Kind {
	case store.KindService:
		s, _ := ev.Object.(*api.Service)
		old, _ := ev.Old.(*api.Service)
		if m.Service(s) || m.Service(old) {
			dirty.Mark(s.GetId())
		}
	case store.KindTask:
		if t, _ := ev.Object.(*api.Task); m.Task(t) && taskEventMatters(ev) {
			dirty.Mark(t.GetServiceId())
		}
	}
}

// taskEventMatters reports whether a task event can change what its
// service's pass does: a task taking or leaving a slot (or a node's place),
// a new desired state, a move to another node, or a task meant to run that
// just ended.
// Progress reports on the way to RUNNING do not.
func taskEventMatters(ev store.Event) bool {
	t, _ := ev.Object.(*api.Task)
	old, _ := ev.Old.(*api.Task)
	if ev.Action != api.StoreAction_KIND_UPDATE || old == nil {
		return OccupiesSlot(t)
	}
	ended := IsTerminal(t.GetStatus().GetState()) && !IsTerminal(old.GetStatus().GetState())
	// A first placement (the scheduler's) changes nothing a pass decides:
	// the node was fit when placed, and its going down or draining later
	// arrives as a node event.
	moved := old.NodeId != t.NodeId && old.NodeId != ""
	return old.DesiredState != t.DesiredState || moved || (ended && MeantToRun(t))
}

// serviceExists reports whether service id exists, remembering answers in
// seen: reading a service copies it.
func serviceExists(tx store.ReadTx, id string, seen map[string]bool) bool {
	ok, known := seen[id]
	if !known {
		ok = tx.Service(id) != nil
		seen[id] = ok
	}
	return ok
}
