package ipam

// This file owns Pool: its configuration, construction, and the allocate / pin / release / expire
// operations. state.go snapshots and restores what a Pool holds; spanset.go is the ordered set the
// free-address search runs on.

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Config describes one pool: one subnet and the rules for handing out its addresses.
type Config struct {
	// Subnet is the pool's prefix, host bits clear. IPv4 /31 and /32 and IPv6 /127 and /128 are
	// refused.
	Subnet netip.Prefix
	// Gateway is never handed out. The zero Addr means the subnet's first assignable address.
	Gateway netip.Addr
	// Dynamic (--ip-range) bounds AllocateNext; the zero Range means the whole subnet. Pins may
	// use any address of the subnet, in this range or not.
	Dynamic Range
	// Reserved (--aux-address, reserved ranges) are skipped by AllocateNext but may be pinned.
	Reserved []Range
	// Cooldown is how long a released address stays out of AllocateNext's reach (and refuses
	// pins that do not pass TakeCooling). Zero frees addresses at once.
	Cooldown time.Duration
}

// PinPolicy says what AllocateSpecific does with an address that is cooling down.
type PinPolicy uint8

const (
	// RefuseCooling refuses a cooling address with ErrCoolingDown.
	RefuseCooling PinPolicy = iota
	// TakeCooling allocates a cooling address, ending its cooldown. Only for a caller that knows
	// the address's previous holder is the new one's owner (see the package doc).
	TakeCooling
)

// Pool hands out the addresses of one subnet. It keeps only its allocated and cooling addresses,
// as runs, so its size costs nothing. A Pool is not safe for concurrent use.
type Pool struct {
	cfg      Config // as given, with the default gateway filled in
	is4      bool
	subnet   span // every address of the subnet
	dyn      span // where AllocateNext looks: Config.Dynamic clipped to the assignable addresses
	gateway  u128
	reserved []span // Config.Reserved, merged and ascending
	cooldown int64  // nanoseconds

	used       spanSet        // allocated addresses
	nUsed      uint64         // how many
	blocked    spanSet        // used ∪ cooling ∪ reserved ∪ {gateway}: what AllocateNext skips
	dynBlocked u128           // how many addresses of dyn are in blocked
	cooling    map[u128]int64 // cooling address → release time, Unix nanoseconds
	queue      coolQueue      // the cooling addresses by release time; entries may be stale
	last       u128           // the last address AllocateNext returned, if hasLast
	hasLast    bool
	next       u128 // where AllocateNext starts looking; always in dyn
}

// New checks cfg and returns an empty pool for it. Errors name the field and say why.
func New(cfg Config) (*Pool, error) {
	sub := cfg.Subnet
	badSubnet := func(err error, format string, args ...any) (*Pool, error) {
		e := &Error{Field: "subnet", Err: fmt.Errorf("%w: "+format, append([]any{err}, args...)...)}
		if sub.IsValid() {
			e.Value = sub.String()
		}
		return nil, e
	}
	switch hostBits := sub.Addr().BitLen() - sub.Bits(); {
	case !sub.IsValid():
		return badSubnet(ErrInvalidSubnet, "not set or not a prefix")
	case sub != sub.Masked():
		return badSubnet(ErrInvalidSubnet, "host bits set (the prefix is %s)", sub.Masked())
	case sub.Addr().Is4In6():
		return badSubnet(ErrInvalidSubnet, "an IPv4-mapped IPv6 prefix; write it as IPv4")
	case hostBits < 2:
		return badSubnet(ErrSubnetTooSmall, "a /%d leaves no assignable address", sub.Bits())
	}
	p := &Pool{cfg: cfg, is4: sub.Addr().Is4(), subnet: prefixSpan(sub), cooldown: int64(cfg.Cooldown)}
	assignable := span{p.subnet.first.next(), p.subnet.last}
	if p.is4 {
		assignable.last = assignable.last.prev() // the broadcast address
	}

	if cfg.Cooldown < 0 {
		return nil, &Error{Field: "cooldown", Value: cfg.Cooldown.String(), Err: fmt.Errorf("%w: negative", ErrInvalidCooldown)}
	}
	p.gateway = assignable.first
	if cfg.Gateway.IsValid() {
		x, err := p.assignable("gateway", cfg.Gateway, false)
		if err != nil {
			return nil, err
		}
		p.gateway = x
	}
	p.cfg.Gateway = p.gateway.addr(p.is4)

	p.dyn = assignable
	if cfg.Dynamic.IsValid() {
		r, err := p.inSubnetRange("range", cfg.Dynamic)
		if err != nil {
			return nil, err
		}
		var ok bool
		if p.dyn, ok = r.intersect(assignable); !ok {
			return nil, &Error{Field: "range", Value: cfg.Dynamic.String(), Err: fmt.Errorf("%w: holds no assignable address of %s", ErrInvalidRange, sub)}
		}
	}
	p.cfg.Reserved = slices.Clone(cfg.Reserved)
	for i, r := range cfg.Reserved {
		sp, err := p.inSubnetRange(fmt.Sprintf("reserved[%d]", i), r)
		if err != nil {
			return nil, err
		}
		p.reserved = append(p.reserved, sp)
	}
	p.reserved = mergeSpans(p.reserved)
	p.clear()
	return p, nil
}

// clear empties the pool: nothing allocated or cooling, AllocateNext starting at the range's start.
func (p *Pool) clear() {
	p.used, p.nUsed = spanSet{}, 0
	p.blocked, p.dynBlocked = spanSet{}, u128{}
	for _, sp := range mergeSpans(append(slices.Clone(p.reserved), span{p.gateway, p.gateway})) {
		p.blocked.insert(sp)
		if in, ok := sp.intersect(p.dyn); ok {
			p.dynBlocked = p.dynBlocked.add(in.size())
		}
	}
	p.cooling, p.queue = map[u128]int64{}, nil
	p.last, p.hasLast, p.next = u128{}, false, p.dyn.first
}

// Config is the pool's configuration, the default gateway filled in.
func (p *Pool) Config() Config {
	cfg := p.cfg
	cfg.Reserved = slices.Clone(cfg.Reserved)
	return cfg
}

// AllocateNext hands out the first address after the one it handed out last that is in the
// dynamic range and neither allocated, reserved, the gateway, nor cooling down, wrapping around at
// the range's end; so a freed address comes back as late as possible. It fails with ErrPoolFull.
// Pins do not move its cursor.
func (p *Pool) AllocateNext(now time.Time) (netip.Addr, error) {
	p.Expire(now)
	x, ok := p.firstFree(p.next)
	if !ok {
		// [next, end] is all blocked; a free address found from the start is below next.
		x, ok = p.firstFree(p.dyn.first)
	}
	if !ok {
		return netip.Addr{}, &Error{Field: "range", Value: p.dynRange().String(),
			Err: fmt.Errorf("%w in %s (%d cooling down)", ErrPoolFull, p.cfg.Subnet, len(p.cooling))}
	}
	p.take(x)
	p.last, p.hasLast = x, true
	p.next = p.after(x)
	return x.addr(p.is4), nil
}

// firstFree is the first address from x to the dynamic range's end that is not blocked. The spans
// of blocked are maximal, so one lookup does: the address after x's span is free.
func (p *Pool) firstFree(x u128) (u128, bool) {
	if n := p.blocked.find(x); n != nil {
		if !n.last.less(p.dyn.last) {
			return x, false
		}
		x = n.last.next()
	}
	return x, !p.dyn.last.less(x)
}

// after is the address AllocateNext looks at after x, wrapping at the dynamic range's end.
func (p *Pool) after(x u128) u128 {
	if x == p.dyn.last {
		return p.dyn.first
	}
	return x.next()
}

// AllocateSpecific allocates addr (a pin): any address of the subnet but the network, broadcast
// and gateway addresses, reserved or outside the dynamic range included. It fails with
// ErrInUse if addr is allocated, and with ErrCoolingDown if it is cooling down unless policy is
// TakeCooling.
func (p *Pool) AllocateSpecific(addr netip.Addr, now time.Time, policy PinPolicy) error {
	x, err := p.assignable("address", addr, true)
	if err != nil {
		return err
	}
	p.Expire(now)
	if p.used.contains(x) {
		return &Error{Field: "address", Value: addr.String(), Err: ErrInUse}
	}
	if at, cooling := p.cooling[x]; cooling {
		if policy != TakeCooling {
			return &Error{Field: "address", Value: addr.String(), Err: fmt.Errorf("%w: released at %s, free from %s",
				ErrCoolingDown, formatNanos(at), formatNanos(p.expiry(at)))}
		}
		delete(p.cooling, x) // its queue entry is stale now; Expire skips it
	}
	p.take(x)
	return nil
}

// Release frees addr, which must be allocated (ErrNotAllocated). AllocateNext skips it, and
// AllocateSpecific refuses it, until the cooldown has passed since now.
func (p *Pool) Release(addr netip.Addr, now time.Time) error {
	x, err := p.inSubnet("address", addr)
	if err != nil {
		return err
	}
	if !p.used.contains(x) {
		return &Error{Field: "address", Value: addr.String(), Err: ErrNotAllocated}
	}
	p.Expire(now)
	p.used.remove(x)
	p.nUsed--
	if p.cooldown == 0 {
		p.unblock(x)
		return nil
	}
	at := now.UnixNano()
	p.cooling[x] = at
	p.queue.push(coolEntry{x, at})
	return nil
}

// Expire ends the cooldowns that are over at now. Every method taking now calls it first; the
// methods that do not take now report the pool as of the latest now it was given.
func (p *Pool) Expire(now time.Time) {
	ns := now.UnixNano()
	for len(p.queue) > 0 && p.expiry(p.queue[0].at) <= ns {
		e := p.queue.pop()
		if at, ok := p.cooling[e.x]; ok && at == e.at {
			delete(p.cooling, e.x)
			p.unblock(e.x)
		}
	}
}

// expiry is when an address released at at stops cooling down.
func (p *Pool) expiry(at int64) int64 {
	if at > math.MaxInt64-p.cooldown {
		return math.MaxInt64
	}
	return at + p.cooldown
}

func (p *Pool) take(x u128) {
	p.used.add(x)
	p.nUsed++
	if p.blocked.add(x) && p.dyn.contains(x) {
		p.dynBlocked = p.dynBlocked.next()
	}
}

// unblock lets AllocateNext have x again, unless x is the gateway or reserved.
func (p *Pool) unblock(x u128) {
	if x == p.gateway || p.isReserved(x) {
		return
	}
	if p.blocked.remove(x) && p.dyn.contains(x) {
		p.dynBlocked = p.dynBlocked.prev()
	}
}

func (p *Pool) isReserved(x u128) bool {
	i, found := slices.BinarySearchFunc(p.reserved, x, func(sp span, x u128) int { return sp.first.cmp(x) })
	return found || i > 0 && p.reserved[i-1].contains(x)
}

// Status is what an address is to a pool.
type Status uint8

const (
	StatusOutside   Status = iota // not in the subnet
	StatusNetwork                 // the subnet's first address (IPv6: the subnet-router anycast address)
	StatusBroadcast               // the IPv4 subnet's last address
	StatusGateway
	StatusAllocated
	StatusCooling  // released less than the cooldown ago
	StatusReserved // free, but only for a pin
	StatusFree     // free; AllocateNext may hand it out if it is in the dynamic range
)

var statusNames = [...]string{"outside", "network", "broadcast", "gateway", "allocated", "cooling", "reserved", "free"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", s)
}

// Status reports what addr is to the pool, as of the latest now the pool was given.
func (p *Pool) Status(addr netip.Addr) Status {
	x, err := p.inSubnet("address", addr)
	_, cooling := p.cooling[x]
	switch {
	case err != nil:
		return StatusOutside
	case x == p.subnet.first:
		return StatusNetwork
	case p.is4 && x == p.subnet.last:
		return StatusBroadcast
	case x == p.gateway:
		return StatusGateway
	case p.used.contains(x):
		return StatusAllocated
	case cooling:
		return StatusCooling
	case p.isReserved(x):
		return StatusReserved
	}
	return StatusFree
}

// Contains reports whether addr is in the pool's subnet.
func (p *Pool) Contains(addr netip.Addr) bool { return p.Status(addr) != StatusOutside }

// InUse reports whether addr is allocated.
func (p *Pool) InUse(addr netip.Addr) bool { return p.Status(addr) == StatusAllocated }

// Used is the number of allocated addresses, pins outside the dynamic range included.
func (p *Pool) Used() uint64 { return p.nUsed }

// Cooling is the number of addresses cooling down.
func (p *Pool) Cooling() int { return len(p.cooling) }

// Free is the number of addresses AllocateNext can still hand out, saturated at math.MaxUint64
// for large IPv6 pools.
func (p *Pool) Free() uint64 { return p.dyn.size().sub(p.dynBlocked).saturated() }

// inSubnet is addr as a number if it is in the subnet.
func (p *Pool) inSubnet(field string, addr netip.Addr) (u128, error) {
	x := u128Of(addr)
	if !addr.IsValid() || addr.Is4() != p.is4 || addr.Zone() != "" || !p.subnet.contains(x) {
		return x, &Error{Field: field, Value: addr.String(), Err: fmt.Errorf("%w %s", ErrOutsideSubnet, p.cfg.Subnet)}
	}
	return x, nil
}

// assignable is addr as a number if it is in the subnet and not its network or broadcast address,
// nor (if notGateway) its gateway.
func (p *Pool) assignable(field string, addr netip.Addr, notGateway bool) (u128, error) {
	x, err := p.inSubnet(field, addr)
	if err != nil {
		return x, err
	}
	what := ""
	switch {
	case x == p.subnet.first && p.is4:
		what = "the network address"
	case x == p.subnet.first:
		what = "the subnet-router anycast address"
	case x == p.subnet.last && p.is4:
		what = "the broadcast address"
	case x == p.gateway && notGateway:
		what = "the gateway"
	default:
		return x, nil
	}
	return x, &Error{Field: field, Value: addr.String(), Err: fmt.Errorf("%w: %s of %s", ErrUnassignable, what, p.cfg.Subnet)}
}

// inSubnetRange is r as a span if it is well formed and inside the subnet.
func (p *Pool) inSubnetRange(field string, r Range) (span, error) {
	if _, err := p.inSubnet(field, r.First); err != nil {
		return span{}, &Error{Field: field, Value: r.String(), Err: fmt.Errorf("%w %s (at %s)", ErrOutsideSubnet, p.cfg.Subnet, r.First)}
	}
	if _, err := p.inSubnet(field, r.Last); err != nil {
		return span{}, &Error{Field: field, Value: r.String(), Err: fmt.Errorf("%w %s (at %s)", ErrOutsideSubnet, p.cfg.Subnet, r.Last)}
	}
	if r.Last.Less(r.First) {
		return span{}, &Error{Field: field, Value: r.String(), Err: fmt.Errorf("%w: %s comes after %s", ErrInvalidRange, r.First, r.Last)}
	}
	return r.span(), nil
}

func (p *Pool) dynRange() Range { return Range{p.dyn.first.addr(p.is4), p.dyn.last.addr(p.is4)} }

// mergeSpans sorts spans and joins those that overlap or touch.
func mergeSpans(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int { return a.first.cmp(b.first) })
	out := spans[:0]
	for _, sp := range spans {
		if n := len(out); n > 0 && (out[n-1].last == maxU128 || !out[n-1].last.next().less(sp.first)) {
			if out[n-1].last.less(sp.last) {
				out[n-1].last = sp.last
			}
			continue
		}
		out = append(out, sp)
	}
	return out
}

func formatNanos(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// coolQueue is a binary min-heap of cooling addresses by release time.
type coolQueue []coolEntry

type coolEntry struct {
	x  u128
	at int64 // release time, Unix nanoseconds
}

func (q *coolQueue) push(e coolEntry) {
	*q = append(*q, e)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if h[parent].at <= h[i].at {
			break
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func (q *coolQueue) pop() coolEntry {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		least := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < n && h[c].at < h[least].at {
				least = c
			}
		}
		if least == i {
			break
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
	*q = h
	return top
}
