package ipam

// This file owns State: what a Pool holds beyond its Config, taken out with State and put back
// with Restore, so that a new leader rebuilds from replicated records the pool the old one had.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// State is everything a Pool holds beyond its Config. New(cfg) followed by Restore(st) gives a
// pool that answers every call exactly as the pool st was taken from.
type State struct {
	Allocated []netip.Addr // ascending from State; any order for Restore
	Cooling   []Released   // ascending by address from State; any order for Restore
	Last      netip.Addr   // the address AllocateNext returned last; the zero Addr if none yet
}

// Released is an address cooling down since At.
type Released struct {
	Addr netip.Addr
	At   time.Time
}

// State returns the pool's state as of the latest now it was given (an address whose cooldown is
// over but that no call has expired yet is still listed; it makes no difference to any answer).
func (p *Pool) State() State {
	var st State
	p.used.each(func(sp span) bool {
		for x := sp.first; ; x = x.next() {
			st.Allocated = append(st.Allocated, x.addr(p.is4))
			if x == sp.last {
				return true
			}
		}
	})
	st.Cooling = p.CoolingAddrs()
	st.Last = p.Last()
	return st
}

// Last is State().Last without the walk over the allocated addresses: the address AllocateNext
// returned last, the zero Addr if none yet. With CoolingAddrs it is what a caller must record
// besides the allocated addresses themselves (see the package doc).
func (p *Pool) Last() netip.Addr {
	if !p.hasLast {
		return netip.Addr{}
	}
	return p.last.addr(p.is4)
}

// CoolingAddrs is State().Cooling: the addresses cooling down, ascending.
func (p *Pool) CoolingAddrs() []Released {
	out := make([]Released, 0, len(p.cooling))
	for x, at := range p.cooling {
		out = append(out, Released{x.addr(p.is4), time.Unix(0, at).UTC()})
	}
	slices.SortFunc(out, func(a, b Released) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Restore replaces the pool's state with st, typically on a fresh pool built by New from the same
// Config as the pool st describes. It checks everything first and changes nothing on error: an
// address that is not assignable, listed twice, or both allocated and cooling, or a Last outside
// the dynamic range. With a zero cooldown, Cooling is ignored.
func (p *Pool) Restore(st State) error {
	np := *p
	np.clear()
	// In ascending order each address extends the span before it, so the span sets stay a few
	// nodes deep however the caller ordered them (a leader reads them in binding-ID order).
	type listed struct {
		x u128
		i int
	}
	xs := make([]listed, len(st.Allocated))
	for i, a := range st.Allocated {
		x, err := np.assignable("", a, true)
		if err != nil {
			return renamed(err, fmt.Sprintf("state.allocated[%d]", i))
		}
		xs[i] = listed{x, i}
	}
	slices.SortFunc(xs, func(a, b listed) int { return cmp.Or(a.x.cmp(b.x), cmp.Compare(a.i, b.i)) })
	twice := -1 // the first listing, in the caller's order, of an address listed before it
	for j := 1; j < len(xs); j++ {
		if xs[j].x == xs[j-1].x && (twice < 0 || xs[j].i < twice) {
			twice = xs[j].i
		}
	}
	if twice >= 0 {
		return &Error{Field: fmt.Sprintf("state.allocated[%d]", twice), Value: st.Allocated[twice].String(), Err: fmt.Errorf("%w: listed twice", ErrInUse)}
	}
	for _, l := range xs {
		np.take(l.x)
	}
	if np.cooldown > 0 {
		np.cooling = make(map[u128]int64, len(st.Cooling))
		np.queue = make(coolQueue, 0, len(st.Cooling))
		for i, r := range st.Cooling {
			x, err := np.assignable("", r.Addr, true)
			if err != nil {
				return renamed(err, fmt.Sprintf("state.cooling[%d]", i))
			}
			if _, dup := np.cooling[x]; dup || np.used.contains(x) {
				return &Error{Field: fmt.Sprintf("state.cooling[%d]", i), Value: r.Addr.String(), Err: fmt.Errorf("%w: listed twice", ErrInUse)}
			}
			at := r.At.UnixNano()
			np.cooling[x] = at
			np.queue.push(coolEntry{x, at})
			if np.blocked.add(x) && np.dyn.contains(x) {
				np.dynBlocked = np.dynBlocked.next()
			}
		}
	}
	if st.Last.IsValid() {
		x, err := np.inSubnet("state.last", st.Last)
		if err != nil {
			return err
		}
		if !np.dyn.contains(x) {
			return &Error{Field: "state.last", Value: st.Last.String(), Err: fmt.Errorf("%w %s", ErrOutsideRange, np.dynRange())}
		}
		np.last, np.hasLast, np.next = x, true, np.after(x)
	}
	*p = np
	return nil
}

// renamed is err, an *Error, with its field replaced.
func renamed(err error, field string) error {
	e := *err.(*Error)
	e.Field = field
	return &e
}
