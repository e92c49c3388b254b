package main

// This file owns the sticky-IP flags of a service: --ip [NETWORK:]SLOT=ADDR
// and --ip-range [NETWORK:]CIDR|A-B on create and update, and --ip-rm
// [NETWORK:]SLOT on update. They write the pins (ips, ip_range) of one of
// the service's --network attachments, so they apply after the network
// lists are edited. Values are checked before any RPC; which attachment
// NETWORK names is settled when the spec is complete: by the name or ID
// the attachment was given as, else by asking the manager (a service's
// stored attachments name their network by ID). Whether an address lies in
// the network's subnet and is free is the manager's to check. (--ip-hold
// is a scalar flag, in service_flags.go.)

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
)

// pinFlags holds the raw values of one command's pin flags and, once
// parse has run, what they ask for.
type pinFlags struct {
	scope            flagScope
	ips, rms, ranges []string

	// Set by parse.
	pins, unpins []slotPin
	rangePins    []rangePin
	parsed       bool
}

// slotPin is one --ip (addr set) or --ip-rm value.
type slotPin struct {
	flag, value string
	network     string // as given; empty: the service's only network
	slot        uint64
	addr        netip.Addr
}

// rangePin is one --ip-range value; an empty r clears the range.
type rangePin struct {
	flag, value string
	network     string
	r           string
}

func addPinFlags(cmd *cobra.Command, scope flagScope) *pinFlags {
	p := &pinFlags{scope: scope}
	flags := cmd.Flags()
	if scope == onCreate {
		flags.StringArrayVar(&p.ips, "ip", nil,
			"pin a slot's address, [NETWORK:]SLOT=ADDR, e.g. front:3=10.20.0.13; NETWORK may be left out\n"+
				"when the service has one network; repeatable")
		flags.StringArrayVar(&p.ranges, "ip-range", nil,
			"pin slot i to the i-th address of [NETWORK:]CIDR or [NETWORK:]FIRST-LAST; --ip wins over it;\n"+
				"one per network")
		return p
	}
	flags.StringArrayVar(&p.ips, "ip", nil,
		"pin a slot's address or change its pin, [NETWORK:]SLOT=ADDR; the slot moves to the new address\n"+
			"in a rolling update; repeatable")
	flags.StringArrayVar(&p.rms, "ip-rm", nil,
		"remove a slot's --ip pin, [NETWORK:]SLOT; repeatable")
	flags.StringArrayVar(&p.ranges, "ip-range", nil,
		"pin slot i to the i-th address of [NETWORK:]CIDR or [NETWORK:]FIRST-LAST; NETWORK: alone (or\n"+
			"an empty value for a service with one network) removes the range; one per network")
	return p
}

// names are the pin flags of the command, in --flag form.
func (p *pinFlags) names() []string {
	if p.scope == onCreate {
		return []string{"ip", "ip-range"}
	}
	return []string{"ip", "ip-range", "ip-rm"}
}

// parse checks every value given, before anything is sent.
func (p *pinFlags) parse() error {
	p.pins, p.unpins, p.rangePins = nil, nil, nil
	for _, v := range p.ips {
		pin, err := parseSlotPin(v, true)
		if err != nil {
			return flagError("ip", v, err)
		}
		pin.flag, pin.value = "ip", v
		p.pins = append(p.pins, pin)
	}
	for _, v := range p.rms {
		pin, err := parseSlotPin(v, false)
		if err != nil {
			return flagError("ip-rm", v, err)
		}
		pin.flag, pin.value = "ip-rm", v
		p.unpins = append(p.unpins, pin)
	}
	for _, v := range p.ranges {
		rp, err := parseRangePin(v)
		if err == nil && rp.r == "" && p.scope == onCreate {
			err = errors.New("want CIDR or FIRST-LAST: an empty range removes one on update only")
		}
		if err != nil {
			return flagError("ip-range", v, err)
		}
		rp.flag, rp.value = "ip-range", v
		p.rangePins = append(p.rangePins, rp)
	}
	p.parsed = true
	return nil
}

// any says a pin flag was given.
func (p *pinFlags) any() bool { return len(p.ips)+len(p.rms)+len(p.ranges) > 0 }

// networkResolver returns the ID of the network ref names (a name, an ID
// or a unique prefix of one).
type networkResolver func(ref string) (string, error)

// apply writes the pins into spec's network attachments: removals first,
// then ranges, then pins, so a later value wins. resolve may be nil: then
// NETWORK must be written as the attachment's --network was.
func (p *pinFlags) apply(spec *api.ServiceSpec, resolve networkResolver) error {
	if !p.any() {
		return nil
	}
	if !p.parsed {
		if err := p.parse(); err != nil {
			return err
		}
	}
	nets := spec.GetTask().GetNetworks()
	for _, pin := range p.unpins {
		n, err := findAttachment(nets, pin.network, resolve)
		if err != nil {
			return flagError(pin.flag, pin.value, err)
		}
		delete(n.Ips, pin.slot)
		if len(n.Ips) == 0 {
			n.Ips = nil
		}
	}
	if spec.GetGlobal() != nil {
		if err := p.refuseGlobal(); err != nil {
			return err
		}
	}
	for _, rp := range p.rangePins {
		n, err := findAttachment(nets, rp.network, resolve)
		if err != nil {
			return flagError(rp.flag, rp.value, err)
		}
		n.IpRange = rp.r
	}
	for _, pin := range p.pins {
		n, err := findAttachment(nets, pin.network, resolve)
		if err != nil {
			return flagError(pin.flag, pin.value, err)
		}
		if n.Ips == nil {
			n.Ips = map[uint64]string{}
		}
		n.Ips[pin.slot] = pin.addr.String()
	}
	return nil
}

// refuseGlobal refuses the first pin a global service was given: its
// tasks have no slots. Removing pins is fine.
func (p *pinFlags) refuseGlobal() error {
	reason := errors.New("a global service's tasks have no slots: pins apply to replicated services")
	if len(p.pins) > 0 {
		return flagError(p.pins[0].flag, p.pins[0].value, reason)
	}
	for _, rp := range p.rangePins {
		if rp.r != "" {
			return flagError(rp.flag, rp.value, reason)
		}
	}
	return nil
}

// findAttachment is the attachment of nets that ref names; an empty ref
// names the only one.
func findAttachment(nets []*api.NetworkAttachmentConfig, ref string, resolve networkResolver) (*api.NetworkAttachmentConfig, error) {
	targets := make([]string, len(nets))
	for i, n := range nets {
		targets[i] = n.GetTarget()
	}
	switch {
	case len(nets) == 0:
		return nil, errors.New("the service has no network: attach it to one with --network")
	case ref == "" && len(nets) == 1:
		return nets[0], nil
	case ref == "":
		return nil, fmt.Errorf("the service has %d networks (%s): say which, with a NETWORK: prefix", len(nets), strings.Join(targets, ", "))
	}
	if i := slices.Index(targets, ref); i >= 0 {
		return nets[i], nil
	}
	if resolve != nil {
		id, err := resolve(ref)
		if err != nil {
			return nil, err
		}
		for _, n := range nets {
			if n.GetTarget() == id {
				return n, nil
			}
			if tid, err := resolve(n.GetTarget()); err == nil && tid == id {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("network %s is not one of the service's networks (%s)", ref, strings.Join(targets, ", "))
}

// parseSlotPin parses [NETWORK:]SLOT=ADDR (withAddr) or [NETWORK:]SLOT.
// NETWORK is what comes before the last colon of the part before "=":
// network names have no colon, slots are numbers.
func parseSlotPin(s string, withAddr bool) (slotPin, error) {
	form := "[NETWORK:]SLOT"
	if withAddr {
		form = "[NETWORK:]SLOT=ADDR, e.g. 3=10.20.0.13 or front:3=10.20.0.13"
	}
	left, addrText, hasAddr := strings.Cut(s, "=")
	if hasAddr != withAddr {
		return slotPin{}, errors.New("want " + form)
	}
	var pin slotPin
	slotText := left
	if i := strings.LastIndex(left, ":"); i >= 0 {
		pin.network, slotText = left[:i], left[i+1:]
		if pin.network == "" {
			return slotPin{}, errors.New("empty NETWORK before the colon: want " + form)
		}
	}
	slot, err := strconv.ParseUint(slotText, 10, 64)
	if err != nil || slot == 0 {
		return slotPin{}, fmt.Errorf("slot %q: want a slot number, counting from 1", slotText)
	}
	pin.slot = slot
	if withAddr {
		if strings.Contains(addrText, "/") {
			return slotPin{}, fmt.Errorf("address %q: give the address without a prefix length", addrText)
		}
		if pin.addr, err = parseAddr(addrText); err != nil {
			return slotPin{}, fmt.Errorf("address %q: %w", addrText, err)
		}
	}
	return pin, nil
}

// networkRefPattern matches what may name a network: a name (a DNS label)
// or an ID.
var networkRefPattern = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)

// parseRangePin parses [NETWORK:]CIDR, [NETWORK:]FIRST-LAST, NETWORK: and
// the empty value (the last two clear a range). A value that parses as a
// range whole has no NETWORK: IPv6 ranges are full of colons; network
// names have none.
func parseRangePin(s string) (rangePin, error) {
	if s == "" {
		return rangePin{}, nil
	}
	r, err := parseIPRange(s)
	if err == nil {
		return rangePin{r: r.String()}, nil
	}
	network, rest, ok := strings.Cut(s, ":")
	if !ok || !networkRefPattern.MatchString(network) {
		return rangePin{}, err
	}
	rp := rangePin{network: network}
	if rest == "" {
		return rp, nil
	}
	r, err = parseIPRange(rest)
	if err != nil {
		return rangePin{}, err
	}
	rp.r = r.String()
	return rp, nil
}

// sortedPins prints an attachment's pins, slot order: "1=10.20.0.5, 2=10.20.0.6".
func sortedPins(ips map[uint64]string) string {
	parts := make([]string, 0, len(ips))
	for _, slot := range slices.Sorted(maps.Keys(ips)) {
		parts = append(parts, strconv.FormatUint(slot, 10)+"="+ips[slot])
	}
	return strings.Join(parts, ", ")
}
