// Package reconciletest helps test what a manager's leader runs over the
// store (the reconcilers, the scheduler) on a raft-less storetest store:
// builders of nodes and services, writes and waits that fail the test
// rather than hang, components run for a test's lifetime, a way to wait
// for a reconciler's rounds, and an Updater that records its calls.
//
// Waits are driven by store batches, never by sleeping; their deadline
// only stops a hung test, no test asserts how long anything takes.
//
// It imports api, orchestrator/store and orchestrator/reconcile, never a
// reconciler or the scheduler, so all of their tests may import it.
package reconciletest

// This file owns the store side: writes that fail the test, reads, and
// WaitFor.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// guard bounds every wait of this package: reaching it fails the test.
const guard = 30 * time.Second

// Update runs fn in a store transaction and fails the test if it fails.
func Update(t testing.TB, s *store.MemoryStore, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("store update: %v", err)
	}
}

// Create writes objs to the store in one transaction.
func Create(t testing.TB, s *store.MemoryStore, objs ...store.Object) {
	t.Helper()
	Update(t, s, func(tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Create(o); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tasks returns the tasks of service id, sorted by ID.
func Tasks(s *store.MemoryStore, id string) []*api.Task {
	var ts []*api.Task
	s.View(func(tx store.ReadTx) { ts = tx.TasksByService(id) })
	return ts
}

// WaitFor waits until cond holds on the store, checking it again after
// every committed batch. On giving up it fails the test naming what and
// listing every task with its desired and observed states.
func WaitFor(t testing.TB, s *store.MemoryStore, what string, cond func(store.ReadTx) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	var ok bool
	watch := s.ViewAndWatch(ctx, func(tx store.ReadTx) { ok = cond(tx) })
	for !ok {
		if _, open := <-watch; !open {
			t.Fatalf("gave up waiting for %s; tasks: %s", what, describeTasks(s))
		}
		s.View(func(tx store.ReadTx) { ok = cond(tx) })
	}
}

// describeTasks lists the store's tasks as "name desired/observed".
func describeTasks(s *store.MemoryStore) string {
	var out []string
	s.View(func(tx store.ReadTx) {
		for _, t := range tx.Tasks() {
			out = append(out, reconcile.TaskName(t)+" "+t.DesiredState.String()+"/"+t.GetStatus().GetState().String())
		}
	})
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
