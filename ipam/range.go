package ipam

// This file owns Range, the form of --ip-range and of --aux-address / reserved ranges, and its
// parsing.

import (
	"fmt"
	"net/netip"
	"strings"
)

// Range is the addresses First..Last, both included. The zero Range is "not set".
type Range struct {
	First, Last netip.Addr
}

// ParseRange parses a range written as a CIDR ("10.0.1.0/24", host bits not allowed), as
// "FIRST-LAST" ("10.0.1.10-10.0.1.20"), or as one address.
func ParseRange(s string) (Range, error) { return parseRange("range", s) }

// parseRange is ParseRange with the field its errors name.
func parseRange(field, s string) (Range, error) {
	refuse := func(format string, args ...any) (Range, error) {
		return Range{}, &Error{Field: field, Value: s, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidRange}, args...)...)}
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return refuse("%v", err)
		}
		if p != p.Masked() {
			return refuse("host bits set (the prefix is %s)", p.Masked())
		}
		sp := prefixSpan(p)
		return Range{sp.first.addr(p.Addr().Is4()), sp.last.addr(p.Addr().Is4())}, nil
	}
	firstText, lastText, isPair := strings.Cut(s, "-")
	if !isPair {
		lastText = firstText
	}
	first, err := netip.ParseAddr(firstText)
	if err != nil {
		return refuse("%v", err)
	}
	last, err := netip.ParseAddr(lastText)
	if err != nil {
		return refuse("%v", err)
	}
	r := Range{first, last}
	if first.BitLen() != last.BitLen() {
		return refuse("mixes IPv4 and IPv6")
	}
	if last.Less(first) {
		return refuse("%s comes after %s", first, last)
	}
	return r, nil
}

// IsValid reports whether r is set.
func (r Range) IsValid() bool { return r.First.IsValid() }

// Contains reports whether a is in r.
func (r Range) Contains(a netip.Addr) bool {
	return r.IsValid() && a.BitLen() == r.First.BitLen() && !a.Less(r.First) && !r.Last.Less(a)
}

func (r Range) String() string {
	switch {
	case !r.IsValid():
		return ""
	case r.First == r.Last:
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

func (r Range) span() span { return span{u128Of(r.First), u128Of(r.Last)} }

// Nth is the n-th address of r, counting from 0 (slot i of an --ip-range is Nth(i-1)); false
// past r's end.
func (r Range) Nth(n uint64) (netip.Addr, bool) {
	if !r.IsValid() {
		return netip.Addr{}, false
	}
	sp := r.span()
	x := sp.first.add(u128{0, n})
	if x.less(sp.first) || sp.last.less(x) {
		return netip.Addr{}, false
	}
	return x.addr(r.First.Is4()), true
}

// Size is how many addresses r holds, saturated at the largest uint64.
func (r Range) Size() uint64 {
	if !r.IsValid() {
		return 0
	}
	return r.span().size().saturated()
}
