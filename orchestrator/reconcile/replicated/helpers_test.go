package replicated

// The tests' harness: a Reconciler and its Supervisor on a storetest
// store, with the waits this package's tests share. Builders and the
// generic waits come from reconciletest.

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

// harness runs a Reconciler and its Supervisor on a store.
type harness struct {
	s       *store.MemoryStore
	sup     *restart.Supervisor
	updater *reconciletest.Updater
	rounds  *reconciletest.Rounds
}

func newHarness(t *testing.T, s *store.MemoryStore) *harness {
	t.Helper()
	if s == nil {
		s = storetest.New()
	}
	return &harness{s: s, sup: restart.NewSupervisor(s, quiet), updater: &reconciletest.Updater{}, rounds: reconciletest.NewRounds()}
}

// start runs the Supervisor and a new Reconciler until the test ends (or
// the returned stop is called).
func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	rec := New(h.s, h.sup, h.updater, quiet)
	rec.loop.AfterRound = h.rounds.Done
	return reconciletest.Start(t, map[string]func(ctx context.Context) error{"reconciler": rec.Run, "supervisor": h.sup.Run})
}

// settle waits until the reconciler has seen everything committed before
// the call.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	h.rounds.Settle(t, h.s, func(tx store.Tx) error { return tx.Create(service(api.NewID(), 0, nil)) })
}

func (h *harness) update(t *testing.T, fn func(store.Tx) error) {
	t.Helper()
	reconciletest.Update(t, h.s, fn)
}

func (h *harness) tasks(id string) []*api.Task { return reconciletest.Tasks(h.s, id) }

func service(id string, replicas uint64, policy *api.RestartPolicy) *api.Service {
	return reconciletest.ReplicatedService(id, replicas, reconciletest.WithRestart(policy))
}

func (h *harness) setReplicas(t *testing.T, id string, n uint64) {
	t.Helper()
	h.update(t, func(tx store.Tx) error {
		s := tx.Service(id)
		s.Spec.GetReplicated().Replicas = n
		return tx.Update(s)
	})
}

// runningSlots lists the slots of the service's tasks meant to run, sorted,
// a slot once per task (so a duplicate shows).
func runningSlots(tx store.ReadTx, id string) []uint64 {
	var slots []uint64
	for _, t := range tx.TasksByService(id) {
		if reconcile.MeantToRun(t) {
			slots = append(slots, t.Slot)
		}
	}
	slices.Sort(slots)
	return slots
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// waitSlots waits until the service's tasks meant to run are exactly one
// per slot of want.
func (h *harness) waitSlots(t *testing.T, id string, want []uint64) {
	t.Helper()
	reconciletest.WaitFor(t, h.s, "slots", func(tx store.ReadTx) bool { return slices.Equal(runningSlots(tx, id), want) })
}

// schedule plays the scheduler and the agent: every PENDING task of the
// service meant to run goes to nodeID and RUNNING.
func (h *harness) schedule(t *testing.T, id, nodeID string) {
	t.Helper()
	h.update(t, func(tx store.Tx) error {
		for _, task := range tx.TasksByService(id) {
			if reconcile.MeantToRun(task) && task.Status.GetState() == api.TaskState_TASK_STATE_PENDING {
				task.NodeId = nodeID
				reconcile.SetStatus(task, api.TaskState_TASK_STATE_RUNNING, "running", time.Now())
				if err := tx.Update(task); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
