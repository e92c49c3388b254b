package reconcile_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

// A reconciler of replicated services driven by a Loop: it marks services
// dirty from the store and its events, and reconciles each dirty one once
// per round. This one stops after its first round.
func ExampleLoop() {
	s := storetest.New()
	_ = s.Update(context.Background(), func(tx store.Tx) error {
		for _, id := range []string{"web", "db"} {
			err := tx.Create(&api.Service{Id: id, Spec: &api.ServiceSpec{
				Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1}},
			}})
			if err != nil {
				return err
			}
		}
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	loop := &reconcile.Loop{
		Name:    "example",
		Store:   s,
		Tick:    time.Minute,
		MarkAll: reconcile.Replicated.MarkAll,
		Note: func(batches []store.Batch, dirty reconcile.Dirty) {
			for _, b := range batches {
				for _, ev := range b.Events {
					reconcile.Replicated.Note(ev, dirty)
				}
			}
		},
		Reconcile: func(_ context.Context, id string) error {
			fmt.Println("reconcile", id)
			return nil
		},
		AfterRound: cancel,
	}
	if err := loop.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// reconcile db
	// reconcile web
}
