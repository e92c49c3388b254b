package update

// This file owns one update's life: reading the service when it starts,
// deciding which slots to roll, which to leave for later and which new
// tasks to take over, and the single goroutine's loop that rolls them
// group by group, handles the store batches it watches and ends the
// update. How a slot is rolled is steps.go's; watching new tasks for
// failure is monitor.go's.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// errStale stops an updater whose service was removed or got another spec:
// the updater for the new spec (if any) takes over.
var errStale = errors.New("service removed or its spec changed")

// updater rolls one service onto one spec_version. Only its own goroutine
// touches it.
type updater struct {
	store      *store.MemoryStore
	log        *slog.Logger
	clock      clock
	serviceID  string
	version    uint64
	candidates []slotKey

	batches   <-chan store.Batch
	stopWatch context.CancelFunc
	view      *taskView

	cfg         config
	rollingBack bool
	// queue is the dirty slots not rolled yet, in order; total is how many
	// there were when the updater started, plus the new tasks it took over,
	// the failure ratio's divisor.
	queue    []slotKey
	total    int
	failures int
	// deferred is the dirty slots left alone because their node takes no
	// new tasks (paused, or on its way out): a new task there would never
	// run.
	deferred []slotKey
	// steps is the group in flight; tracked the new tasks still watched.
	steps   []*step
	tracked map[string]*tracked
}

func newUpdater(s *store.MemoryStore, log *slog.Logger, c clock, serviceID string, version uint64, candidates []slotKey) *updater {
	return &updater{
		store:      s,
		log:        log.With("service", serviceID, "spec_version", version),
		clock:      c,
		serviceID:  serviceID,
		version:    version,
		candidates: candidates,
		stopWatch:  func() {},
		tracked:    make(map[string]*tracked),
	}
}

// run rolls the update until it reaches a final state (it reports true),
// or stops early: ctx ended, the service changed, or a store write failed.
func (u *updater) run(ctx context.Context) bool {
	defer func() { u.stopWatch() }()
	finished, err := u.roll(ctx)
	finished = finished && err == nil // a failed final write is retried by the next call
	switch {
	case err == nil:
	case errors.Is(err, errStale):
		u.log.Info("update stopped: the service was removed or its spec changed")
	case ctx.Err() != nil:
		u.log.Info("update stopped", "reason", context.Cause(ctx))
	default:
		u.log.Error("update stopped", "err", err)
	}
	return finished
}

func (u *updater) roll(ctx context.Context) (bool, error) {
	svc := u.watch(ctx)
	if svc == nil || svc.SpecVersion != u.version {
		return false, errStale
	}
	if isPaused(svc) {
		u.log.Info("update paused; waiting for a spec change", "status", svc.GetUpdateStatus().GetMessage())
		return true, nil
	}
	// Slots left by a finished rollback (deferred on a paused node, or
	// found by a new leader) are rolled as the rollback they belong to:
	// with its config, and a failure pauses it; an update's failure action
	// would swap back to the spec the rollback left, the failed one.
	resumesRollback := stateOf(svc) == api.UpdateStatus_STATE_ROLLBACK_COMPLETED
	u.rollingBack = isRollingBack(svc) || resumesRollback
	u.cfg = configFor(svc.GetSpec(), u.rollingBack)
	if err := u.adopt(ctx, svc); err != nil {
		return false, err
	}
	u.store.View(func(tx store.ReadTx) {
		for _, k := range u.candidates {
			switch {
			case !needsRoll(svc, u.view.slot(k)):
			case k.node != "" && !reconcile.NodeTakesNewTasks(tx.Node(k.node)):
				u.deferred = append(u.deferred, k)
			default:
				u.queue = append(u.queue, k)
			}
		}
		if reconcile.UpdateInProgress(svc) {
			u.takeOver(tx)
		}
	})
	if len(u.deferred) > 0 {
		u.log.Info("slots left until their nodes take new tasks", "slots", len(u.deferred))
	}
	u.total = len(u.queue) + len(u.tracked)
	if u.total == 0 {
		if reconcile.UpdateInProgress(svc) {
			return true, u.complete(ctx)
		}
		return true, nil
	}
	if !reconcile.UpdateInProgress(svc) {
		err := u.update(ctx, func(tx store.Tx, s *api.Service) error {
			markStarted(s, u.clock.now(), resumesRollback)
			return tx.Update(s)
		})
		if err != nil {
			return false, fmt.Errorf("mark update started: %w", err)
		}
	}
	u.log.Info("rolling tasks", "slots", len(u.queue), "taken_over", len(u.tracked), "rollback", u.rollingBack,
		"parallelism", u.cfg.parallelism, "delay", u.cfg.delay, "start_first", u.cfg.startFirst,
		"monitor", u.cfg.monitor, "failure_action", u.cfg.failureAction)
	return u.loop(ctx)
}

// phase is where the loop is between store batches.
type phase int

const (
	phaseRolling    phase = iota // a group's new tasks are on their way up
	phaseDelay                   // waiting the configured delay before the next group
	phaseMonitoring              // every slot rolled; watching the last new tasks
)

// loop rolls the queue group by group, after the group taken over if any.
// Store batches move the group's new tasks along; timers end the delay and
// the final monitoring.
func (u *updater) loop(ctx context.Context) (bool, error) {
	if len(u.steps) == 0 {
		if err := u.startGroup(ctx); err != nil {
			return false, err
		}
	}
	ph := phaseRolling
	var timer <-chan time.Time // nil unless delaying or monitoring
	for {
		if ph == phaseRolling && u.groupSettled() {
			switch {
			case len(u.queue) == 0:
				ph, timer = phaseMonitoring, u.clock.after(u.monitorLeft())
			case u.cfg.delay > 0:
				ph, timer = phaseDelay, u.clock.after(u.cfg.delay)
			default:
				if err := u.startGroup(ctx); err != nil {
					return false, err
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case b, ok := <-u.batches:
			if !ok { // fell too far behind: read everything again
				if ctx.Err() != nil {
					return false, ctx.Err()
				}
				b = store.Batch{Restored: true}
			}
			if stop, err := u.handle(ctx, b); stop || err != nil {
				return stop, err
			}
		case <-timer:
			timer = nil
			switch ph {
			case phaseDelay:
				ph = phaseRolling
				if err := u.startGroup(ctx); err != nil {
					return false, err
				}
			case phaseMonitoring:
				if left := u.monitorLeft(); left > 0 {
					timer = u.clock.after(left)
					continue
				}
				return true, u.complete(ctx)
			}
		}
	}
}

// takeOver watches the new tasks an update in progress may have in flight
// in slots it rolled that are no longer out of date (a previous leader's
// last groups): in each such slot, the tasks of the current spec meant to
// run that have not run yet become the group in flight, and those that
// have run for less than monitor are watched for the rest of it, as that
// leader would have. A slot the update rolled still holds the older task
// it replaced; tasks of other slots (new replicas of a scale) are not the
// update's. A task not run yet on a node that takes no new tasks is left
// out: it will not run before the node does. tx reads the nodes.
func (u *updater) takeOver(tx store.ReadTx) {
	queued := make(map[slotKey]bool, len(u.queue)+len(u.deferred))
	for _, k := range slices.Concat(u.queue, u.deferred) {
		queued[k] = true
	}
	now := u.clock.now()
	for _, k := range u.view.keys() {
		tasks := u.view.slot(k)
		rolled := slices.ContainsFunc(tasks, func(t *api.Task) bool { return t.SpecVersion < u.version })
		if queued[k] || !rolled {
			continue
		}
		for _, t := range tasks {
			if t.SpecVersion != u.version || !reconcile.MeantToRun(t) {
				continue
			}
			switch state := t.GetStatus().GetState(); {
			case reconcile.IsTerminal(state):
			case state < api.TaskState_TASK_STATE_RUNNING:
				if k.node != "" && !reconcile.NodeTakesNewTasks(tx.Node(k.node)) {
					continue
				}
				st := &step{key: k, taskID: t.Id}
				u.steps = append(u.steps, st)
				u.tracked[t.Id] = &tracked{step: st}
			default:
				ran := t.GetStatus().GetTimestamp().AsTime()
				if ran.After(now) { // the agent's clock is ahead
					ran = now
				}
				if now.Sub(ran) < u.cfg.monitor {
					u.tracked[t.Id] = &tracked{runningAt: ran}
				}
			}
		}
	}
}

// watch reads the service and its tasks and follows them from there, with
// no gap; it replaces any earlier watch. It returns the service, nil when
// it is gone.
func (u *updater) watch(ctx context.Context) *api.Service {
	u.stopWatch()
	wctx, cancel := context.WithCancel(ctx)
	var (
		svc   *api.Service
		tasks []*api.Task
	)
	u.batches = u.store.ViewAndWatch(wctx, func(tx store.ReadTx) {
		svc = tx.Service(u.serviceID)
		if svc != nil {
			tasks = tx.TasksByService(u.serviceID)
		}
	})
	u.stopWatch = cancel
	u.view = newTaskView(tasks)
	return svc
}

// handle takes in one committed batch: it follows the service, keeps the
// view current, moves the tracked new tasks along and acts on what they
// did. It reports true when the update reached a final state.
func (u *updater) handle(ctx context.Context, b store.Batch) (bool, error) {
	var o observations
	if b.Restored {
		svc := u.watch(ctx)
		if svc == nil || svc.SpecVersion != u.version {
			return false, errStale
		}
		if isPaused(svc) {
			return true, nil
		}
		for id := range u.tracked {
			if t := u.view.tasks[id]; t != nil {
				u.observe(t, &o)
			} else {
				u.observeGone(id)
			}
		}
		return u.act(ctx, &o)
	}
	for _, ev := range b.Events {
		switch ev.Kind {
		case store.KindService:
			if ev.Object.GetId() != u.serviceID {
				continue
			}
			svc, _ := ev.Object.(*api.Service)
			if ev.Action == api.StoreAction_KIND_DELETE || svc.GetSpecVersion() != u.version {
				return false, errStale
			}
			if isPaused(svc) {
				return true, nil
			}
		case store.KindTask:
			t, _ := ev.Object.(*api.Task)
			if t == nil || t.ServiceId != u.serviceID {
				continue
			}
			if ev.Action == api.StoreAction_KIND_DELETE {
				u.view.remove(t.Id)
				u.observeGone(t.Id)
				continue
			}
			u.view.put(t)
			u.observe(t, &o)
		}
	}
	return u.act(ctx, &o)
}

// complete retires what start-first failures and restarts left behind and
// marks the update done.
func (u *updater) complete(ctx context.Context) error {
	if err := u.sweep(ctx); err != nil {
		return err
	}
	var rollback bool
	err := u.update(ctx, func(tx store.Tx, s *api.Service) error {
		if !reconcile.UpdateInProgress(s) {
			return nil
		}
		rollback = isRollingBack(s)
		markCompleted(s, u.clock.now())
		return tx.Update(s)
	})
	if err != nil {
		return fmt.Errorf("mark update completed: %w", err)
	}
	u.log.Info("update completed", "slots", u.total, "failures", u.failures, "rollback", rollback)
	return nil
}

// update runs fn in a transaction on the service, read fresh, once the
// service is known to be still there at the updater's spec_version.
func (u *updater) update(ctx context.Context, fn func(store.Tx, *api.Service) error) error {
	return u.store.Update(ctx, func(tx store.Tx) error {
		svc := tx.Service(u.serviceID)
		if svc == nil || svc.SpecVersion != u.version {
			return errStale
		}
		return fn(tx, svc)
	})
}

// maxPerTx bounds the items (slots or tasks) one transaction handles, so a
// huge group commits as several raft entries of reasonable size.
const maxPerTx = 500

// updateEach runs fn for items 0..n-1, maxPerTx of them per transaction.
// fn must only stage changes: a transaction may run it again.
func (u *updater) updateEach(ctx context.Context, n int, fn func(tx store.Tx, svc *api.Service, i int) error) error {
	for lo := 0; lo < n; lo += maxPerTx {
		hi := min(lo+maxPerTx, n)
		err := u.update(ctx, func(tx store.Tx, svc *api.Service) error {
			for i := lo; i < hi; i++ {
				if err := fn(tx, svc, i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
