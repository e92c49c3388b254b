package ipam

// This file owns address arithmetic. Addresses are handled as unsigned 128-bit integers, IPv4 ones
// in their IPv4-mapped IPv6 form (::ffff:a.b.c.d), so both families share every line of pool
// logic; only the conversion back to netip.Addr looks at the family. No math/big.

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
)

// u128 is an address, or a count of addresses, as a 128-bit unsigned integer.
type u128 struct{ hi, lo uint64 }

var maxU128 = u128{math.MaxUint64, math.MaxUint64}

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// addr converts x back to an address of the given family.
func (x u128) addr(is4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	a := netip.AddrFrom16(b)
	if is4 {
		a = a.Unmap()
	}
	return a
}

func (x u128) cmp(y u128) int {
	switch {
	case x.hi < y.hi:
		return -1
	case x.hi > y.hi:
		return 1
	case x.lo < y.lo:
		return -1
	case x.lo > y.lo:
		return 1
	}
	return 0
}

func (x u128) less(y u128) bool { return x.cmp(y) < 0 }

func (x u128) next() u128 {
	lo, c := bits.Add64(x.lo, 1, 0)
	return u128{x.hi + c, lo}
}

func (x u128) prev() u128 {
	lo, b := bits.Sub64(x.lo, 1, 0)
	return u128{x.hi - b, lo}
}

func (x u128) add(y u128) u128 {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	return u128{x.hi + y.hi + c, lo}
}

func (x u128) sub(y u128) u128 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	return u128{x.hi - y.hi - b, lo}
}

func (x u128) or(y u128) u128 { return u128{x.hi | y.hi, x.lo | y.lo} }

// saturated is x as a uint64, or math.MaxUint64 if it does not fit (large IPv6 pools).
func (x u128) saturated() uint64 {
	if x.hi != 0 {
		return math.MaxUint64
	}
	return x.lo
}

// lowBits is the number whose n lowest bits are set: the host part of a prefix of 128-n bits.
func lowBits(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{0, 1<<n - 1}
	case n < 128:
		return u128{1<<(n-64) - 1, math.MaxUint64}
	}
	return maxU128
}

// span is the addresses first..last, both included; first <= last.
type span struct{ first, last u128 }

func (s span) contains(x u128) bool { return !x.less(s.first) && !s.last.less(x) }

// size is the number of addresses in s. It wraps to 0 only for the whole 128-bit space, which no
// span the pool counts can be (the network address is never in one).
func (s span) size() u128 { return s.last.sub(s.first).next() }

// intersect is the addresses in both s and t, and whether there are any.
func (s span) intersect(t span) (span, bool) {
	r := s
	if r.first.less(t.first) {
		r.first = t.first
	}
	if t.last.less(r.last) {
		r.last = t.last
	}
	return r, !r.last.less(r.first)
}

// prefixSpan is every address of p, network and broadcast included.
func prefixSpan(p netip.Prefix) span {
	first := u128Of(p.Addr())
	return span{first, first.or(lowBits(p.Addr().BitLen() - p.Bits()))}
}
