package ipam

// This file holds the reference model the pool is checked against (a map per state, linear scans,
// no cleverness), the operations the exhaustive and randomized tests apply to both, and the
// comparison of the two.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

type model struct {
	subnet    netip.Prefix
	addrs     []netip.Addr // every address of the subnet, ascending
	dyn       []netip.Addr // the dynamic range's assignable addresses, ascending
	network   netip.Addr
	broadcast netip.Addr // zero for IPv6
	gateway   netip.Addr
	reserved  []Range
	cooldown  time.Duration
	allocated map[netip.Addr]bool
	cooling   map[netip.Addr]time.Time
	last      netip.Addr
}

func newModel(cfg Config) *model {
	m := &model{subnet: cfg.Subnet, reserved: cfg.Reserved, cooldown: cfg.Cooldown,
		allocated: map[netip.Addr]bool{}, cooling: map[netip.Addr]time.Time{}}
	for a := cfg.Subnet.Addr(); cfg.Subnet.Contains(a); a = a.Next() {
		m.addrs = append(m.addrs, a)
	}
	m.network = m.addrs[0]
	if m.network.Is4() {
		m.broadcast = m.addrs[len(m.addrs)-1]
	}
	m.gateway = cfg.Gateway
	if !m.gateway.IsValid() {
		m.gateway = m.addrs[1]
	}
	for _, a := range m.addrs {
		if a != m.network && a != m.broadcast && (!cfg.Dynamic.IsValid() || cfg.Dynamic.Contains(a)) {
			m.dyn = append(m.dyn, a)
		}
	}
	return m
}

func (m *model) isReserved(a netip.Addr) bool {
	return slices.ContainsFunc(m.reserved, func(r Range) bool { return r.Contains(a) })
}

func (m *model) expire(now time.Time) {
	for a, at := range m.cooling {
		if !now.Before(at.Add(m.cooldown)) {
			delete(m.cooling, a)
		}
	}
}

// nextCandidate reports whether AllocateNext may hand out a.
func (m *model) nextCandidate(a netip.Addr) bool {
	_, cooling := m.cooling[a]
	return !m.allocated[a] && !cooling && a != m.gateway && !m.isReserved(a)
}

func (m *model) allocateNext(now time.Time) (netip.Addr, error) {
	m.expire(now)
	start := 0
	if m.last.IsValid() {
		start = slices.Index(m.dyn, m.last) + 1
	}
	for k := range m.dyn {
		a := m.dyn[(start+k)%len(m.dyn)]
		if m.nextCandidate(a) {
			m.allocated[a], m.last = true, a
			return a, nil
		}
	}
	return netip.Addr{}, ErrPoolFull
}

func (m *model) assignable(a netip.Addr) error {
	switch {
	case !m.subnet.Contains(a):
		return ErrOutsideSubnet
	case a == m.network || a == m.broadcast || a == m.gateway:
		return ErrUnassignable
	}
	return nil
}

func (m *model) allocateSpecific(a netip.Addr, now time.Time, policy PinPolicy) error {
	if err := m.assignable(a); err != nil {
		return err
	}
	m.expire(now)
	if m.allocated[a] {
		return ErrInUse
	}
	if _, cooling := m.cooling[a]; cooling && policy != TakeCooling {
		return ErrCoolingDown
	}
	delete(m.cooling, a)
	m.allocated[a] = true
	return nil
}

func (m *model) release(a netip.Addr, now time.Time) error {
	switch {
	case !m.subnet.Contains(a):
		return ErrOutsideSubnet
	case !m.allocated[a]:
		return ErrNotAllocated
	}
	m.expire(now)
	delete(m.allocated, a)
	if m.cooldown > 0 {
		m.cooling[a] = now
	}
	return nil
}

func (m *model) status(a netip.Addr) Status {
	_, cooling := m.cooling[a]
	switch {
	case !m.subnet.Contains(a):
		return StatusOutside
	case a == m.network:
		return StatusNetwork
	case a == m.broadcast:
		return StatusBroadcast
	case a == m.gateway:
		return StatusGateway
	case m.allocated[a]:
		return StatusAllocated
	case cooling:
		return StatusCooling
	case m.isReserved(a):
		return StatusReserved
	}
	return StatusFree
}

func (m *model) free() uint64 {
	var n uint64
	for _, a := range m.dyn {
		if m.nextCandidate(a) {
			n++
		}
	}
	return n
}

type opKind uint8

const (
	opNext opKind = iota
	opPin
	opPinTake
	opRelease
	opAdvance
)

type op struct {
	kind opKind
	addr netip.Addr
	by   time.Duration // opAdvance
}

func (o op) String() string {
	switch o.kind {
	case opNext:
		return "next"
	case opPin:
		return "pin " + o.addr.String()
	case opPinTake:
		return "pin-take " + o.addr.String()
	case opRelease:
		return "release " + o.addr.String()
	}
	return "advance " + o.by.String()
}

var sentinels = []error{ErrOutsideSubnet, ErrUnassignable, ErrInUse, ErrCoolingDown, ErrNotAllocated, ErrPoolFull}

// sentinel is the sentinel err wraps, err itself if none (so a surprise shows in the diff).
func sentinel(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// harness drives a pool and a model with the same operations and compares them.
type harness struct {
	t    testing.TB
	pool *Pool
	m    *model
	now  time.Time
	log  []op // the operations so far, for the failure message
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newHarness(t testing.TB, cfg Config) *harness {
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return &harness{t: t, pool: p, m: newModel(cfg), now: t0}
}

func (h *harness) fail(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("after %v:\n%s", h.log, fmt.Sprintf(format, args...))
}

// apply runs o on both and compares the results and the counts.
func (h *harness) apply(o op) {
	h.t.Helper()
	h.log = append(h.log, o)
	var got, want netip.Addr
	var gotErr, wantErr error
	switch o.kind {
	case opNext:
		got, gotErr = h.pool.AllocateNext(h.now)
		if gotErr == nil && (h.m.allocated[got] || h.m.status(got) == StatusCooling) {
			h.fail("AllocateNext handed out %s, which is %s", got, h.m.status(got))
		}
		want, wantErr = h.m.allocateNext(h.now)
	case opPin, opPinTake:
		policy := RefuseCooling
		if o.kind == opPinTake {
			policy = TakeCooling
		}
		gotErr = h.pool.AllocateSpecific(o.addr, h.now, policy)
		wantErr = h.m.allocateSpecific(o.addr, h.now, policy)
	case opRelease:
		gotErr = h.pool.Release(o.addr, h.now)
		wantErr = h.m.release(o.addr, h.now)
	case opAdvance:
		h.now = h.now.Add(o.by)
		h.pool.Expire(h.now)
		h.m.expire(h.now)
	}
	if got != want || sentinel(gotErr) != wantErr {
		h.fail("%s: pool gave %v, %v; model %v, %v", o, got, gotErr, want, wantErr)
	}
	if gotErr != nil && !errors.As(gotErr, new(*Error)) {
		h.fail("%s: error %v is not an *Error", o, gotErr)
	}
	if o.addr.IsValid() {
		h.checkStatus(o.addr)
	}
	if got.IsValid() {
		h.checkStatus(got)
	}
	if u, c, f := h.pool.Used(), h.pool.Cooling(), h.pool.Free(); u != uint64(len(h.m.allocated)) || c != len(h.m.cooling) || f != h.m.free() {
		h.fail("used, cooling, free: pool %d, %d, %d; model %d, %d, %d", u, c, f, len(h.m.allocated), len(h.m.cooling), h.m.free())
	}
}

func (h *harness) checkStatus(a netip.Addr) {
	h.t.Helper()
	if got, want := h.pool.Status(a), h.m.status(a); got != want {
		h.fail("Status(%s) = %s, model %s", a, got, want)
	}
	if got, want := h.pool.InUse(a), h.m.allocated[a]; got != want {
		h.fail("InUse(%s) = %v, model %v", a, got, want)
	}
}

// checkAll compares the status of every address of the subnet.
func (h *harness) checkAll() {
	h.t.Helper()
	for _, a := range h.m.addrs {
		h.checkStatus(a)
	}
}
