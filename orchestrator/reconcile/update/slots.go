package update

// This file owns what an updater knows of a service's slots: the key that
// names a slot, the service's tasks kept current from the store watch, and
// the rules deciding what rolling one slot takes. The rules are pure; the
// updater applies them to tasks read inside a transaction.

import (
	"cmp"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
)

// slotKey names a slot: its number for a replicated service, its node for
// a global one (whose tasks have slot 0).
type slotKey struct {
	slot uint64
	node string
}

func keyOf(t *api.Task) slotKey {
	if t.Slot != 0 {
		return slotKey{slot: t.Slot}
	}
	return slotKey{node: t.NodeId}
}

func (k slotKey) String() string {
	if k.slot != 0 {
		return fmt.Sprintf("slot %d", k.slot)
	}
	return "node " + k.node
}

func compareKeys(a, b slotKey) int {
	if c := cmp.Compare(a.slot, b.slot); c != 0 {
		return c
	}
	return cmp.Compare(a.node, b.node)
}

// taskView is the service's tasks as of the last store batch the updater
// handled, by ID and by slot. Its tasks are shared with the store: read
// them, never change them.
type taskView struct {
	tasks map[string]*api.Task
	slots map[slotKey]map[string]struct{}
}

func newTaskView(tasks []*api.Task) *taskView {
	v := &taskView{tasks: make(map[string]*api.Task, len(tasks)), slots: make(map[slotKey]map[string]struct{})}
	for _, t := range tasks {
		v.put(t)
	}
	return v
}

// put records t, unless the view already holds a newer version of it.
func (v *taskView) put(t *api.Task) {
	if old, ok := v.tasks[t.Id]; ok {
		if old.GetMeta().GetVersion() > t.GetMeta().GetVersion() {
			return
		}
		v.unindex(old)
	}
	v.tasks[t.Id] = t
	k := keyOf(t)
	if v.slots[k] == nil {
		v.slots[k] = make(map[string]struct{})
	}
	v.slots[k][t.Id] = struct{}{}
}

func (v *taskView) remove(id string) {
	if old, ok := v.tasks[id]; ok {
		v.unindex(old)
		delete(v.tasks, id)
	}
}

func (v *taskView) unindex(t *api.Task) {
	k := keyOf(t)
	delete(v.slots[k], t.Id)
	if len(v.slots[k]) == 0 {
		delete(v.slots, k)
	}
}

// slot returns the tasks the view holds in slot k.
func (v *taskView) slot(k slotKey) []*api.Task {
	out := make([]*api.Task, 0, len(v.slots[k]))
	for id := range v.slots[k] {
		out = append(out, v.tasks[id])
	}
	slices.SortFunc(out, func(a, b *api.Task) int { return cmp.Compare(a.Id, b.Id) })
	return out
}

// keys returns the slots the view holds tasks in, in rolling order.
func (v *taskView) keys() []slotKey {
	out := make([]slotKey, 0, len(v.slots))
	for k := range v.slots {
		out = append(out, k)
	}
	slices.SortFunc(out, compareKeys)
	return out
}

// ids returns the IDs of the tasks the view holds in slot k.
func (v *taskView) ids(k slotKey) []string {
	out := make([]string, 0, len(v.slots[k]))
	for id := range v.slots[k] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// sameSpec reports whether t runs what service's current spec asks for:
// the same task spec and endpoint, pins aside, and addresses that agree
// with the slot's pins (a pin change moves only its slot). Such a task is out of date only by
// number (a scale, a change of the update config, a rollback to the spec it
// was made from) and is brought up to date in place.
func sameSpec(service *api.Service, t *api.Task) bool {
	return equalMessages(reconcile.WithoutPins(t.GetSpec()), reconcile.WithoutPins(service.GetSpec().GetTask())) &&
		equalMessages(t.GetEndpoint(), service.GetSpec().GetEndpoint()) &&
		reconcile.AddressesMatchPins(service, t)
}

// equalMessages is proto.Equal with nil and empty messages equal.
func equalMessages(a, b proto.Message) bool {
	if proto.Size(a) == 0 && proto.Size(b) == 0 {
		return true
	}
	return proto.Equal(a, b)
}

// needsRoll reports whether the slot holding tasks has a task that still
// holds it and runs another spec than the service's: one a new task must
// replace (one out of date only by number is adopted instead).
func needsRoll(service *api.Service, tasks []*api.Task) bool {
	return slices.ContainsFunc(tasks, func(t *api.Task) bool {
		return reconcile.OccupiesSlot(t) && reconcile.IsTaskDirty(service, t) && !sameSpec(service, t)
	})
}

// adoptable reports whether t is out of date only by number (see
// sameSpec) and still holds its slot.
func adoptable(service *api.Service, t *api.Task) bool {
	return reconcile.OccupiesSlot(t) && reconcile.IsTaskDirty(service, t) && sameSpec(service, t)
}

// slotPlan is what rolling one slot takes.
type slotPlan struct {
	// keep is a task of the current spec, meant to run and not ended, that
	// becomes the slot's new task (one a previous updater created); nil
	// when a new task must be made.
	keep *api.Task
	// retire is every other task holding the slot; they get desired
	// SHUTDOWN.
	retire []*api.Task
}

// planSlot decides how to roll the slot holding tasks; ok is false when
// the slot is up to date.
func planSlot(service *api.Service, tasks []*api.Task) (p slotPlan, ok bool) {
	if !needsRoll(service, tasks) {
		return slotPlan{}, false
	}
	for _, t := range tasks {
		if reconcile.IsTaskDirty(service, t) || !reconcile.MeantToRun(t) || reconcile.IsTerminal(t.GetStatus().GetState()) {
			continue
		}
		if p.keep == nil || t.GetStatus().GetState() > p.keep.GetStatus().GetState() {
			p.keep = t
		}
	}
	for _, t := range tasks {
		if t != p.keep && reconcile.OccupiesSlot(t) {
			p.retire = append(p.retire, t)
		}
	}
	return p, true
}
