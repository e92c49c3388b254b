package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/reconciletest"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

func TestUpdateInChunks(t *testing.T) {
	const n = 2*reconcile.MaxWritesPerUpdate + 500
	s, p := storetest.NewWithProposer()
	objs := []store.Object{slotTask("removed", 1, remove, running, 0)}
	for i := range n {
		objs = append(objs, slotTask(fmt.Sprintf("t%05d", i), 1, running, running, 0))
	}
	reconciletest.Create(t, s, objs...)
	before := p.Proposals()

	commits := 0
	err := reconcile.UpdateInChunks(context.Background(), s, func(tx store.Tx, b *reconcile.Budget) error {
		return b.SetDesired(tx, shutdown, tx.Tasks()...)
	}, func() { commits++ })
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Proposals() - before; got != 3 || commits != 3 {
		t.Errorf("%d transactions, committed called %d times; want 3 and 3 for %d writes", got, commits, n)
	}
	s.View(func(tx store.ReadTx) {
		for _, task := range tx.Tasks() {
			want := shutdown
			if task.Id == "removed" {
				want = remove // never moved back
			}
			if task.DesiredState != want {
				t.Fatalf("task %s desired %v, want %v", task.Id, task.DesiredState, want)
			}
		}
	})
}

func TestBudget(t *testing.T) {
	b := reconcile.NewBudget(3)
	if !b.Spend(2) || b.Exhausted() {
		t.Fatal("2 of 3 did not fit")
	}
	if b.Spend(2) || !b.Exhausted() {
		t.Fatal("2 more fit in 1")
	}
	if !b.Spend(1) || !b.Exhausted() {
		t.Fatal("the last write did not fit, or the budget forgot it ran out")
	}
}

func TestFitTasksBoundsTheBytesOfATransaction(t *testing.T) {
	small := &api.TaskSpec{Container: &api.ContainerSpec{Image: "web:1"}}
	big := &api.TaskSpec{Container: &api.ContainerSpec{Image: "web:1", Env: []string{"BIG=" + strings.Repeat("x", 32<<10)}}}
	for _, tc := range []struct {
		name string
		spec *api.TaskSpec
		want func(n int) bool
	}{
		{"a small template keeps the count bound", small, func(n int) bool { return n == reconcile.MaxWritesPerUpdate }},
		{"a 32 KiB template fits the byte bound", big, func(n int) bool {
			return n < reconcile.MaxWritesPerUpdate && n*(proto.Size(big)) <= reconcile.MaxBytesPerUpdate && n > 100
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := reconcile.NewBudget(reconcile.MaxWritesPerUpdate)
			b.FitTasks(tc.spec)
			n := 0
			for b.Spend(1) {
				n++
			}
			if !tc.want(n) {
				t.Fatalf("%d writes fit", n)
			}
		})
	}
}
