package agent

// This file owns the node's set of tasks: it applies assignment messages —
// a COMPLETE one replaces the set, an INCREMENTAL one changes it — by
// creating, updating and removing runners (runner.go), and stops and
// removes workloads the executor holds for tasks the cluster no longer
// names.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/api"
)

// cleanupTimeout bounds stopping and removing one workload nobody waits on.
const cleanupTimeout = time.Minute

// removeRetry spaces the tries of a task's removal that failed.
const removeRetry = 5 * time.Second

// worker runs the tasks assigned to the node for as long as one agent runs.
// When its ctx ends the runners stop, the workloads do not.
type worker struct {
	ctx      context.Context
	executor exec.Executor
	reports  *reporter
	log      *slog.Logger
	wg       sync.WaitGroup // runner and cleanup goroutines
	// onNetworks is Config.OnNetworks.
	onNetworks func(nets []*api.Network, complete bool)
	// onEndpoints is Config.OnEndpoints.
	onEndpoints func(complete bool, set []*api.Endpoint, removed []*api.EndpointKey)
	// onNetworksRemoved is Config.OnNetworksRemoved.
	onNetworksRemoved func(ids []string)
	// onServices is Config.OnServices.
	onServices func(complete bool, set []*api.ServiceView, removed []string)
	// endpointGrace is Config.EndpointGrace.
	endpointGrace time.Duration

	mu    sync.Mutex
	tasks map[string]*runner
}

func newWorker(ctx context.Context, e exec.Executor, reports *reporter, log *slog.Logger) *worker {
	return &worker{ctx: ctx, executor: e, reports: reports, log: log, tasks: make(map[string]*runner)}
}

// apply applies one assignments message.
func (w *worker) apply(msg *api.AssignmentsMessage) {
	complete := msg.Type == api.AssignmentsMessage_TYPE_COMPLETE
	if (complete || len(msg.Networks) > 0) && w.onNetworks != nil {
		w.onNetworks(msg.Networks, complete)
	}
	if len(msg.RemovedNetworks) > 0 && w.onNetworksRemoved != nil {
		w.onNetworksRemoved(msg.RemovedNetworks)
	}
	if w.onEndpoints != nil && (complete || len(msg.Endpoints) > 0 || len(msg.RemovedEndpoints) > 0) {
		w.onEndpoints(complete, msg.Endpoints, msg.RemovedEndpoints)
	}
	if w.onServices != nil && (complete || len(msg.Services) > 0 || len(msg.RemovedServices) > 0) {
		w.onServices(complete, msg.Services, msg.RemovedServices)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if msg.Type == api.AssignmentsMessage_TYPE_COMPLETE {
		named := make(map[string]bool, len(msg.UpdateTasks))
		for _, t := range msg.UpdateTasks {
			named[t.Id] = true
		}
		for id, r := range w.tasks {
			if !named[id] {
				r.remove()
			}
		}
		w.wg.Go(func() { w.removeOrphans(named) })
	}
	for _, t := range msg.UpdateTasks {
		if r, ok := w.tasks[t.Id]; ok {
			r.update(t)
			continue
		}
		r := newRunner(w, t)
		w.tasks[t.Id] = r
		r.update(t)
	}
	for _, id := range msg.RemoveTasks {
		if r, ok := w.tasks[id]; ok {
			r.remove()
		}
	}
}

// forget drops a runner that finished removing its task.
func (w *worker) forget(r *runner) {
	w.mu.Lock()
	if w.tasks[r.id] == r {
		delete(w.tasks, r.id)
	}
	w.mu.Unlock()
	w.reports.forget(r.id)
}

// removeOrphans stops and removes the executor's workloads of tasks that
// neither named holds nor a runner handles: tasks deleted while no agent
// listened (a reconnect, a role switch).
func (w *worker) removeOrphans(named map[string]bool) {
	ids, err := w.executor.Tasks(w.ctx)
	if err != nil {
		w.log.Warn("list the executor's tasks", "err", err)
		return
	}
	for _, id := range ids {
		w.mu.Lock()
		_, handled := w.tasks[id]
		w.mu.Unlock()
		if named[id] || handled {
			continue
		}
		w.log.Info("removing a task the cluster no longer has", "task", id)
		if err := w.removeWorkload(&api.Task{Id: id}, nil); err != nil {
			w.log.Warn("remove an orphaned task", "task", id, "err", err)
		}
	}
	if c, ok := w.executor.(exec.Collector); ok {
		ctx, cancel := context.WithTimeout(w.ctx, cleanupTimeout)
		defer cancel()
		if err := c.CollectGarbage(ctx); err != nil {
			w.log.Warn("collect the executor's garbage after a resync", "err", err)
		}
	}
}

// removeWorkload stops and removes t's workload, through ctl when the
// caller has one.
func (w *worker) removeWorkload(t *api.Task, ctl exec.Controller) error {
	if ctl == nil {
		var err error
		if ctl, err = w.executor.Controller(t); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(w.ctx, cleanupTimeout)
	defer cancel()
	if err := ctl.Shutdown(ctx); err != nil {
		return err
	}
	return ctl.Remove(ctx)
}

// wait returns once every runner has stopped; call it after ctx ended.
func (w *worker) wait() { w.wg.Wait() }
