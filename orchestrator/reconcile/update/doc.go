// Package update rolls a service's tasks onto its current spec: rolling
// updates, and rollbacks to the previous spec, in groups, watching every new
// task for failure and applying the service's failure action.
//
// The replicated and global reconcilers own slots; on every pass they hand
// the Supervisor (their reconcile.Updater) the slots holding an out-of-date
// task. The Supervisor keeps at most one updater per service and makes those
// calls idempotent. A caller's duties, in order:
//
//  1. Make one Supervisor (NewSupervisor) for the reconcilers of a manager
//     and call Update from reconcile passes with the leader's ctx, as often
//     as they like, with the out-of-date slots, and also with none while
//     reconcile.UpdateInProgress holds (only an updater ends an update): a
//     call for the spec_version an updater already works on (or finished:
//     completed, paused, rolled back) does nothing, one for a newer
//     spec_version stops the old updater and starts a new one, one for an
//     older spec_version is stale and ignored. (One exception: a call
//     handing a slot a finished updater deferred, whose node now takes new
//     tasks, starts an updater for it.)
//  2. Never reuse a spec_version number for a service (the Control API
//     bumps it on every spec change and on a rollback; so does the
//     automatic rollback here): a number names one spec for good. To resume
//     a paused update the spec must change, i.e. get a new number.
//  3. When leadership ends, cancel ctx; Wait returns once every updater has
//     stopped. A new leader's reconcilers call Update again and the update
//     resumes from the store: finished slots hold tasks of the current spec
//     and are not rolled again, a new task created but not yet running is
//     taken over, and update_status says whether the update was paused.
//     While it says UPDATING or ROLLBACK_STARTED, the updater also takes
//     over the current spec's tasks in the slots the update already rolled
//     (the last groups the old leader started, whose slots are no longer
//     out of date): it waits for those not running yet and watches those
//     that have run for less than monitor, as the old leader would have,
//     before it completes the update.
//
// An updater reads the service and its tasks when it starts and follows
// them through one store watch; it is the only goroutine driving its
// update. It rolls the dirty slots it was handed in order (slot number, or
// node ID for a global service), in groups of UpdateConfig.parallelism,
// with delay between groups. It leaves a global service's slot whose node
// takes no new tasks (reconcile.NodeTakesNewTasks: a paused node keeps its
// task, but a new one would never run there) and completes without it;
// the slot is rolled once the node takes new tasks again. Rolling a slot:
//
//   - A task whose spec_version is old but whose task spec and endpoint are
//     those of the current spec (a scale or an update-config change, the
//     untouched tasks of a rollback) is brought to the new spec_version in
//     place, without a restart.
//   - Stop-first: in one transaction the slot's old tasks get desired
//     SHUTDOWN and a new task (reconcile.NewTask, same slot; same node for a
//     global service) is created PENDING. The group waits for it to run.
//   - Start-first: the new task is created first, in a transaction that
//     also writes the old ones unchanged (so a restart of an old task racing
//     with it fails its version check, or makes it fail: never a second new
//     task beside the first); once it is RUNNING the old ones get desired
//     SHUTDOWN. If it fails first, it gets desired SHUTDOWN and the old task
//     keeps the slot. Either way a slot never has two tasks meant to run
//     when its step is over.
//   - A new task that ends before it runs, or within monitor after it does,
//     counts as failed (unless a manager stopped it). Once failures /
//     (dirty slots + tasks taken over) exceeds max_failure_ratio,
//     failure_action applies.
//
// update_status conventions (the Control API and the CLI rely on them;
// X is a task ID):
//
//	UPDATING           "update in progress"  set here when dirty slots appear
//	                   and the status is unset or COMPLETED (a new leader, a
//	                   deferred node taking new tasks again), with
//	                   started_at; the Control API sets it on spec changes
//	PAUSED             "update paused due to failure or early termination of task X"
//	ROLLBACK_STARTED   "update rolled back due to failure or early termination of task X"
//	                   (automatic rollback; spec and previous_spec swapped,
//	                   previous_spec_version = the failed spec's number,
//	                   spec_version = that number + 1)
//	ROLLBACK_PAUSED    "rollback paused due to failure or early termination of task X"
//	                   (a rollback never rolls back)
//	COMPLETED          "update completed", with completed_at
//	ROLLBACK_COMPLETED "rollback completed", with completed_at
//
// During ROLLBACK_STARTED the updater uses spec.rollback, else spec.update,
// else the defaults: parallelism 1, no delay, failure action PAUSE, monitor
// 5s, max failure ratio 0, stop-first.
//
// It imports api, orchestrator/store and orchestrator/reconcile.
package update
