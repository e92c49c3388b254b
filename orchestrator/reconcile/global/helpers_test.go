package global

// The tests' harness: a Reconciler and its Supervisor on a storetest
// store, with the waits this package's tests share. Builders and the
// generic waits come from reconciletest.

import (
	"context"
	"log/slog"
	"slices"
	"testing"

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

func newHarness(t *testing.T) *harness {
	t.Helper()
	s := storetest.New()
	return &harness{s: s, sup: restart.NewSupervisor(s, quiet), updater: &reconciletest.Updater{}, rounds: reconciletest.NewRounds()}
}

// start runs the Supervisor and a new Reconciler until the test ends (or
// the returned stop is called).
func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	rec := New(h.s, h.sup, h.updater, quiet)
	rec.loop.AfterRound = h.rounds.Done
	return reconciletest.Start(t, map[string]func(context.Context) error{"reconciler": rec.Run, "supervisor": h.sup.Run})
}

// settle waits until the reconciler has seen everything committed before
// the call. The poke is a global service no node fits.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	h.rounds.Settle(t, h.s, func(tx store.Tx) error { return tx.Create(service(api.NewID(), "node.id==none")) })
}

func (h *harness) update(t *testing.T, fn func(store.Tx) error) {
	t.Helper()
	reconciletest.Update(t, h.s, fn)
}

func (h *harness) tasks(id string) []*api.Task { return reconciletest.Tasks(h.s, id) }

func service(id string, constraints ...string) *api.Service {
	return reconciletest.GlobalService(id, reconciletest.WithConstraints(constraints...))
}

// node returns a READY, ACTIVE node with labels given as key, value pairs.
func node(id string, labels ...string) *api.Node {
	n := reconciletest.Node(id)
	for i := 0; i+1 < len(labels); i += 2 {
		reconciletest.WithLabel(labels[i], labels[i+1])(n)
	}
	return n
}

// runningNodes lists the nodes of the service's tasks meant to run, sorted,
// a node once per task (so a duplicate shows).
func runningNodes(tx store.ReadTx, id string) []string {
	var nodes []string
	for _, t := range tx.TasksByService(id) {
		if reconcile.MeantToRun(t) {
			nodes = append(nodes, t.NodeId)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// waitNodes waits until the service's tasks meant to run are exactly one
// per node of want (sorted).
func (h *harness) waitNodes(t *testing.T, id string, want ...string) {
	t.Helper()
	reconciletest.WaitFor(t, h.s, "nodes "+id, func(tx store.ReadTx) bool { return slices.Equal(runningNodes(tx, id), want) })
}
