package dns

// This file owns the package's errors: the sentinels callers test with errors.Is, and FieldError,
// which names the input field that was refused.

import "errors"

var (
	// ErrInvalid: an input field was refused and nothing changed; the error is a *FieldError
	// naming it.
	ErrInvalid = errors.New("invalid input")
	// ErrUnknownNetwork: Lookup or Update was asked about a network no Zone of the last Sync has.
	ErrUnknownNetwork = errors.New("unknown network")
	// ErrClosed: the Server was closed.
	ErrClosed = errors.New("DNS server closed")
)

// FieldError is a refused input: which field (as in the Go types, indexes included:
// "zones[1].Services[0].VIP", "Config.Upstreams[2]") and why. It matches ErrInvalid with
// errors.Is.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return "dns: invalid " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }
