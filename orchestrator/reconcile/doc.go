// Package reconcile holds what the manager's reconcilers share: how a task
// is made from a service, which tasks are out of date, which nodes may keep
// tasks, which task keeps a slot, and the Updater contract between the
// reconcilers that own slots and the rolling updater that replaces their
// tasks (task.go); the Loop that drives every watch-driven reconciler
// (loop.go); splitting big changes into transactions (budget.go); and
// which services and events concern a slot owner (mode.go).
//
// The reconcilers themselves live in sub-packages, one job each:
// replicated (one task per slot 1..N), global (one task per eligible node),
// restart (restart policies: condition, delay, attempts, window), update
// (rolling updates and rollbacks) and taskreaper (bounded task history).
// Each runs on the leader only, is driven by store watch events plus a
// periodic tick, and rebuilds everything it needs from the store when it
// starts, so it resumes cleanly after a leader change. reconciletest helps
// their tests.
//
// It imports api and orchestrator/store only.
package reconcile
