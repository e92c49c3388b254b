package ipam

// This file owns the package's errors: the sentinels callers test with errors.Is, and Error, which
// names the field and the value that were refused.

import "errors"

// Sentinels. Every error the package returns is an *Error wrapping one of these, with the
// specifics (which subnet, which range, since when) in between.
var (
	// ErrInvalidSubnet: the subnet is not a valid prefix, has host bits set, or is an
	// IPv4-mapped IPv6 prefix.
	ErrInvalidSubnet = errors.New("invalid subnet")
	// ErrSubnetTooSmall: an IPv4 /31 or /32, or an IPv6 /127 or /128, leaves no address to assign
	// once the network (and broadcast) address and the gateway are set aside.
	ErrSubnetTooSmall = errors.New("subnet too small")
	// ErrInvalidRange: a range that does not parse, ends before it starts, or (the dynamic range)
	// holds no assignable address.
	ErrInvalidRange = errors.New("invalid range")
	// ErrInvalidCooldown: a negative cooldown.
	ErrInvalidCooldown = errors.New("invalid cooldown")
	// ErrInvalidAddress: an address that does not parse.
	ErrInvalidAddress = errors.New("invalid address")
	// ErrOutsideSubnet: an address, range or gateway outside the subnet, or of the other family.
	ErrOutsideSubnet = errors.New("outside the subnet")
	// ErrOutsideRange: a restored cursor outside the dynamic range.
	ErrOutsideRange = errors.New("outside the dynamic range")
	// ErrUnassignable: the network address, the IPv4 broadcast address or the gateway.
	ErrUnassignable = errors.New("not assignable")
	// ErrInUse: the address is allocated already.
	ErrInUse = errors.New("already in use")
	// ErrCoolingDown: the address was released less than the pool's cooldown ago.
	ErrCoolingDown = errors.New("cooling down")
	// ErrNotAllocated: a release of an address that is not allocated.
	ErrNotAllocated = errors.New("not allocated")
	// ErrPoolFull: the dynamic range has no address AllocateNext may hand out.
	ErrPoolFull = errors.New("no free address")
)

// Error is a refused input or operation: which field, which value, and why (Err, which wraps one
// of the sentinels above).
type Error struct {
	Field string // "subnet", "gateway", "range", "reserved[2]", "cooldown", "address", "state.allocated[7]", "aux_addresses[db]", ...
	Value string // the value refused, as text; empty when there is none
	Err   error
}

func (e *Error) Error() string {
	if e.Value == "" {
		return "ipam: " + e.Field + ": " + e.Err.Error()
	}
	return "ipam: " + e.Field + " " + e.Value + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }
