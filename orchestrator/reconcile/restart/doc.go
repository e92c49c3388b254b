// Package restart applies a service's restart policy to its tasks. It is
// the one place that decides what happens to a task that was meant to run
// and stopped, or whose node can no longer keep it; the replicated and
// global reconcilers find such tasks and hand them to a Supervisor.
//
// The policy (api.RestartPolicy):
//
//   - condition: ANY (the default) restarts whatever the end; ON_FAILURE
//     restarts unless the task COMPLETEd; NONE never restarts.
//   - delay: how long after the end the replacement is created; nil means
//     DefaultDelay, zero means at once.
//   - max_attempts and window: at most max_attempts restarts of one slot
//     within window (for ever when window is zero); 0 means unlimited.
//     Attempts are counted from the slot's tasks in the store (those that
//     ended on their own, COMPLETE, FAILED or REJECTED, with the current
//     spec_version, whose end falls within window), so the count survives
//     a leader change. The task reaper keeps at least max_attempts finished
//     tasks per slot for this (HistoryToKeep).
//
// A restart is one transaction: the old task gets desired SHUTDOWN and its
// replacement (same slot; for a global service, same node; replicated
// replacements have no node, the scheduler places them) is created. A task
// the policy will not restart gets desired COMPLETE: it keeps its slot and
// nothing refills it. A task whose node is down, drained or gone is
// replaced at once, whatever the policy, and does not count as an attempt.
//
// No replacement is made, at once or after the delay, while another task
// still holds the slot (meant to run, or completed for good): the old task
// of a start-first update whose new task failed keeps the slot alone, and
// the Updater decides what follows.
//
// The delay is kept in memory: when it is not zero the transaction only
// stops the old task, and the Supervisor holds the slot (Held) and creates
// the replacement once the delay has passed, in its Run loop. We have no
// desired state meaning "created but wait", so this is the only way to keep
// the scheduler off the replacement. Holds die with leadership: a new
// leader's reconcilers see a slot with no task meant to run and fill it at
// once, without the rest of the delay.
//
// A caller's duties, in order:
//
//  1. Create one Supervisor with NewSupervisor and run its Run on the
//     leader (it creates delayed replacements; without it a hold expires
//     HeldGrace after its due time and the reconcilers fill the slot).
//  2. Inside a store transaction, call Restart for each task meant to run
//     that ended or lost its node, passing the task's slot as read in that
//     transaction; treat a slot that Restart held, or that Held reports, as
//     occupied.
//  3. After the transaction commits (never inside the callback, which may
//     run again), pass the returned Delayed values to Schedule, and Cancel
//     the holds of slots the transaction removed.
//
// It imports api, orchestrator/store and orchestrator/reconcile.
package restart
