package overlay

// This file owns the package's errors: the sentinels callers test with errors.Is, and FieldError,
// which names the input field that was refused.

import "errors"

var (
	// ErrNoBridge: the network's bridge does not exist on this node (no local task has been
	// attached yet), so Sync changed nothing.
	ErrNoBridge = errors.New("network bridge does not exist")
	// ErrInvalid: an input field was refused; the error is a *FieldError naming it.
	ErrInvalid = errors.New("invalid input")
	// ErrNotSynced: Update does not know what the kernel holds for the network, because no Sync
	// of it has succeeded yet, or its last Sync or Update failed, or it was removed. Update
	// changed nothing; call Sync with the network's whole desired state instead.
	ErrNotSynced = errors.New("network overlay not synced")
)

// FieldError is a refused input: which field (as in the Go types, indexes included:
// "Endpoints[3].MAC", "Network.VNI", "LocalVTEP") and why. It matches ErrInvalid with errors.Is.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return "overlay: invalid " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }
