package update

// This file owns Service.update_status: the states an update moves
// through, the messages that go with them, and the automatic rollback that
// swaps the spec back. The functions change a service read inside a
// transaction; the caller stages it. Whether an update is in progress is
// reconcile.UpdateInProgress: the slot owners go by it too.

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
)

// The update_status messages the updater writes. The Control API and the
// CLI match on them; the ones naming a task are built by the functions
// below.
const (
	MessageInProgress        = "update in progress"
	MessageCompleted         = "update completed"
	MessageRollbackCompleted = "rollback completed"
	// MessageRollbackResumed is ROLLBACK_STARTED's message when slots a
	// finished rollback left (their node was paused) are rolled back.
	MessageRollbackResumed = "rollback resumed for the slots it left"
)

// PausedMessage is PAUSED's message when task taskID failed the update.
func PausedMessage(taskID string) string {
	return fmt.Sprintf("update paused due to failure or early termination of task %s", taskID)
}

// RolledBackMessage is ROLLBACK_STARTED's message when task taskID made the
// update roll back on its own.
func RolledBackMessage(taskID string) string {
	return fmt.Sprintf("update rolled back due to failure or early termination of task %s", taskID)
}

// RollbackPausedMessage is ROLLBACK_PAUSED's message when task taskID
// failed a rollback.
func RollbackPausedMessage(taskID string) string {
	return fmt.Sprintf("rollback paused due to failure or early termination of task %s", taskID)
}

func stateOf(svc *api.Service) api.UpdateStatus_State {
	return svc.GetUpdateStatus().GetState()
}

// isPaused reports whether an update or a rollback stopped on failures; it
// stays stopped until the spec changes.
func isPaused(svc *api.Service) bool {
	s := stateOf(svc)
	return s == api.UpdateStatus_STATE_PAUSED || s == api.UpdateStatus_STATE_ROLLBACK_PAUSED
}

// isRollingBack reports whether the service is returning to its previous
// spec.
func isRollingBack(svc *api.Service) bool {
	return stateOf(svc) == api.UpdateStatus_STATE_ROLLBACK_STARTED
}

// markStarted records an update found under way with no status saying so
// (status unset or finished, e.g. after a leader change), or, with
// rollback, the rest of a finished rollback.
func markStarted(svc *api.Service, now time.Time, rollback bool) {
	svc.UpdateStatus = &api.UpdateStatus{
		State:     api.UpdateStatus_STATE_UPDATING,
		StartedAt: timestamppb.New(now),
		Message:   MessageInProgress,
	}
	if rollback {
		svc.UpdateStatus.State = api.UpdateStatus_STATE_ROLLBACK_STARTED
		svc.UpdateStatus.Message = MessageRollbackResumed
	}
}

// markCompleted ends an update or a rollback in progress.
func markCompleted(svc *api.Service, now time.Time) {
	if svc.UpdateStatus == nil {
		svc.UpdateStatus = &api.UpdateStatus{}
	}
	st := svc.UpdateStatus
	if isRollingBack(svc) {
		st.State, st.Message = api.UpdateStatus_STATE_ROLLBACK_COMPLETED, MessageRollbackCompleted
	} else {
		st.State, st.Message = api.UpdateStatus_STATE_COMPLETED, MessageCompleted
	}
	st.CompletedAt = timestamppb.New(now)
}

// markPaused stops an update, or a rollback, because task taskID failed.
func markPaused(svc *api.Service, taskID string) {
	if svc.UpdateStatus == nil {
		svc.UpdateStatus = &api.UpdateStatus{}
	}
	st := svc.UpdateStatus
	if isRollingBack(svc) {
		st.State, st.Message = api.UpdateStatus_STATE_ROLLBACK_PAUSED, RollbackPausedMessage(taskID)
	} else {
		st.State, st.Message = api.UpdateStatus_STATE_PAUSED, PausedMessage(taskID)
	}
}

// markRolledBack returns the service to its previous spec because task
// taskID failed the update: the specs swap (the failed one is kept as
// previous_spec) and the spec gets a new number, so the failed spec's
// tasks are out of date and get rolled back. It reports false, changing
// nothing, when there is no previous spec to return to, or when the previous
// spec would run the same tasks (its template and endpoint are the failed
// ones: rolling "back" would only roll the failure forward).
func markRolledBack(svc *api.Service, taskID string, now time.Time) bool {
	prev, cur := svc.PreviousSpec, svc.GetSpec()
	if prev == nil || (proto.Equal(prev.GetTask(), cur.GetTask()) && proto.Equal(prev.GetEndpoint(), cur.GetEndpoint())) {
		return false
	}
	svc.Spec, svc.PreviousSpec = svc.PreviousSpec, svc.Spec
	svc.PreviousSpecVersion = svc.SpecVersion
	svc.SpecVersion++
	svc.UpdateStatus = &api.UpdateStatus{
		State:     api.UpdateStatus_STATE_ROLLBACK_STARTED,
		StartedAt: timestamppb.New(now),
		Message:   RolledBackMessage(taskID),
	}
	return true
}
