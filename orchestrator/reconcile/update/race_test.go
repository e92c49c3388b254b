package update

// Races between a step and the other writers of its slot: a transaction
// of one commits between the reads and the commit of the other's, which
// must then fail its version check and run again on what committed.

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/reconcile/restart"
	"github.com/shoal/shoal/orchestrator/store"
)

// interleaver commits proposals at once, in order, as storetest's
// Proposer does, except that it runs between, once, before the first
// proposal after it is set: another transaction that commits between the
// reads and the commit of the one proposed.
type interleaver struct {
	store   *store.MemoryStore
	mu      sync.Mutex
	index   uint64
	between func()
}

func newInterleaver() *interleaver {
	p := &interleaver{store: store.New()}
	p.store.SetProposer(p)
	return p
}

func (p *interleaver) Propose(ctx context.Context, payload []byte) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	between := p.between
	p.between = nil
	p.mu.Unlock()
	if between != nil {
		between()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	return p.store.Apply(p.index, payload), nil
}

func (p *interleaver) ReadBarrier(context.Context) error { return nil }

// A start-first step of a slot whose old task just failed, and the
// zero-delay restart of that task, each read the slot before the other
// commits: whichever commits second must see the first's task, so the
// slot ends with one new task meant to run, not two.
func TestStartFirstStepAndRestartOfTheOldTask(t *testing.T) {
	for _, stepFirst := range []bool{false, true} {
		name := "restart commits first"
		if stepFirst {
			name = "step commits first"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			p := newInterleaver()
			st := p.store
			quiet := slog.New(slog.DiscardHandler)

			uc := updateConfig(1, 0, time.Hour, pause)
			uc.Order = api.UpdateConfig_ORDER_START_FIRST
			spec := replicatedSpec(1, "web:2", uc)
			spec.Task.Restart = &api.RestartPolicy{Delay: durationpb.New(0)}
			svc := &api.Service{Id: svcID, Spec: spec, SpecVersion: 2,
				UpdateStatus: &api.UpdateStatus{State: api.UpdateStatus_STATE_UPDATING, Message: MessageInProgress}}
			old := reconcile.NewTask(svc, 1, "node-1", time.Now())
			old.SpecVersion = 1
			old.Spec.Container.Image = "web:1"
			reconcile.SetStatus(old, api.TaskState_TASK_STATE_FAILED, "exit 1", time.Now())
			err := st.Update(ctx, func(tx store.Tx) error {
				if err := tx.Create(svc); err != nil {
					return err
				}
				return tx.Create(old)
			})
			if err != nil {
				t.Fatal(err)
			}

			u := newUpdater(st, quiet, clock{now: time.Now, after: time.After}, svcID, 2, []slotKey{{slot: 1}})
			defer u.stopWatch()
			u.cfg = configFor(u.watch(ctx).GetSpec(), false)
			u.queue = []slotKey{{slot: 1}}
			step := func() {
				if err := u.startGroup(ctx); err != nil {
					t.Errorf("start group: %v", err)
				}
			}
			sup := restart.NewSupervisor(st, quiet)
			restartOld := func() {
				err := st.Update(ctx, func(tx store.Tx) error {
					_, _, err := sup.Restart(tx, tx.Service(svcID), tx.TasksByService(svcID), tx.Task(old.Id), restart.Ended)
					return err
				})
				if err != nil {
					t.Errorf("restart: %v", err)
				}
			}
			first, second := step, restartOld
			if stepFirst {
				first, second = restartOld, step
			}
			p.mu.Lock()
			p.between = second
			p.mu.Unlock()
			first()

			var meant []*api.Task
			st.View(func(tx store.ReadTx) {
				for _, task := range tx.TasksByService(svcID) {
					if reconcile.MeantToRun(task) {
						meant = append(meant, task)
					}
				}
			})
			if len(meant) != 1 || meant[0].SpecVersion != 2 {
				for _, task := range meant {
					t.Logf("meant to run: %s spec_version %d %v", task.Id, task.SpecVersion, task.GetStatus().GetState())
				}
				t.Fatalf("%d tasks meant to run in slot 1, want one of spec_version 2", len(meant))
			}
		})
	}
}
