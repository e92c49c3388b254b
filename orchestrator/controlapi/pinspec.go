package controlapi

// This file owns the validation of a service's network attachments against the rest of its spec:
// the update order they allow, and the slot pins (--ip, --ip-range) its mode and replicas can
// honour. Whether the networks can give the pinned addresses is servicecheck.go's (checkPins).

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
)

// validateNetworkUse checks what a service's network attachments ask of
// the rest of its spec: an update order that never needs two tasks of one
// slot alive at once, and slot pins the service's mode and replicas can
// honour (attachmentPins). Whether the networks can give the pinned
// addresses is checked when the spec is written (checkPins).
func validateNetworkUse(spec *api.ServiceSpec) error {
	atts := spec.GetTask().GetNetworks()
	if len(atts) == 0 {
		return nil
	}
	for _, u := range []struct {
		field  string
		config *api.UpdateConfig
	}{{"spec.update", spec.GetUpdate()}, {"spec.rollback", spec.GetRollback()}} {
		if u.config.GetOrder() == api.UpdateConfig_ORDER_START_FIRST {
			return invalid(u.field+".order", "start-first cannot be used by a service attached to a network: "+
				"a slot keeps its IP on each network and one IP is never held by two tasks, so the new task "+
				"cannot start before the old one stopped; use stop-first")
		}
	}
	for i, a := range atts {
		if _, err := attachmentPins(fmt.Sprintf("spec.task.networks[%d]", i), spec, a); err != nil {
			return err
		}
	}
	return nil
}

// slotPin is the address a network attachment pins one slot to.
type slotPin struct {
	slot uint64
	addr netip.Addr
	// fromRange says the address is the slot's one of ip_range, not an
	// ips entry.
	fromRange bool
}

// field is where in the attachment at att the pin comes from.
func (p slotPin) field(att string) string {
	if p.fromRange {
		return att + ".ip_range"
	}
	return fmt.Sprintf("%s.ips[%d]", att, p.slot)
}

// String names the pin's address the way a refusal starts: "10.20.0.9",
// or "slot 4's address 10.20.0.9" for one of ip_range, whose field does
// not say the slot.
func (p slotPin) String() string {
	if p.fromRange {
		return fmt.Sprintf("slot %d's address %s", p.slot, p.addr)
	}
	return p.addr.String()
}

// attachmentPins returns the pins attachment a, at field in spec, makes,
// by slot: every ips entry (slots yet to come included) and, for each slot
// from 1 to the replicas that ips leaves out, its address of ip_range
// (slot i gets the range's i-th address, ipam.Range.Nth). It refuses pins
// on a global service, slot 0, an address that does not parse or that two
// slots share, an ip_range that does not parse and one that runs out
// before the replicas do. Pins do not depend on the network, so the same
// spec always makes the same pins.
func attachmentPins(field string, spec *api.ServiceSpec, a *api.NetworkAttachmentConfig) ([]slotPin, error) {
	if len(a.GetIps()) == 0 && a.GetIpRange() == "" {
		return nil, nil
	}
	if spec.GetGlobal() != nil {
		f := field + ".ips"
		if len(a.GetIps()) == 0 {
			f = field + ".ip_range"
		}
		return nil, invalid(f, "pins are per slot; a global service has none")
	}
	slots := make([]uint64, 0, len(a.Ips))
	for slot := range a.Ips {
		slots = append(slots, slot)
	}
	slices.Sort(slots)
	replicas := spec.GetReplicated().GetReplicas()
	pins := make([]slotPin, 0, len(slots)+int(min(replicas, MaxReplicas)))
	// The addresses of ips, to the slot each pins. A range's addresses
	// differ from each other, so only ips can pin one twice.
	slotOf := make(map[netip.Addr]uint64, len(slots))
	for _, slot := range slots {
		p := slotPin{slot: slot}
		if slot == 0 {
			return nil, invalid(p.field(field), "slot 0 does not exist: slots number from 1")
		}
		var err error
		if p.addr, err = parsePin(a.Ips[slot]); err != nil {
			return nil, invalid(p.field(field), "%v", err)
		}
		if other, dup := slotOf[p.addr]; dup {
			return nil, invalid(p.field(field), "%s is pinned to slot %d too; one address is one slot's", p.addr, other)
		}
		slotOf[p.addr] = slot
		pins = append(pins, p)
	}
	if a.IpRange == "" {
		return pins, nil
	}
	rangeField := field + ".ip_range"
	r, err := ipam.ParseRange(a.IpRange)
	if err != nil {
		return nil, ipamFieldError(rangeField, err)
	}
	for slot := uint64(1); slot <= replicas; slot++ {
		if _, pinned := a.Ips[slot]; pinned {
			continue
		}
		addr, ok := r.Nth(slot - 1)
		if !ok {
			return nil, invalid(rangeField, "%s holds %d addresses, fewer than the %d replicas: slot %d would have none",
				a.IpRange, r.Size(), replicas, slot)
		}
		if other, dup := slotOf[addr]; dup {
			return nil, invalid(rangeField, "gives slot %d the address %s, which ips pins to slot %d; one address is one slot's", slot, addr, other)
		}
		pins = append(pins, slotPin{slot: slot, addr: addr, fromRange: true})
	}
	slices.SortFunc(pins, func(x, y slotPin) int { return cmp.Compare(x.slot, y.slot) })
	return pins, nil
}

// parsePin parses a pinned address: an IP address without prefix length
// or zone.
func parsePin(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	switch {
	case err != nil && strings.Contains(s, "/"):
		return netip.Addr{}, fmt.Errorf("%q is not an IP address: write it without a prefix length", s)
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	case addr.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%q has a zone; a pin is an address of the network", s)
	}
	return addr, nil
}
