package reconcile

// This file owns the reading of a service's address pins (--ip, --ip-range): which address a
// slot is pinned to on a network, and whether a task's addresses still agree with its service's
// pins, which tells the updater which slots a pin change moves.

import (
	"fmt"
	"net/netip"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
)

// PinFor is the address cfg pins slot to: its ips entry, or else the slot's address of its
// ip_range (slot i gets the range's i-th address). ok is false when the slot is not pinned
// (always for slot 0, a global service's task); an error means a pin that does not parse or a
// slot past the range's end.
func PinFor(cfg *api.NetworkAttachmentConfig, slot uint64) (addr netip.Addr, ok bool, err error) {
	if slot == 0 {
		return netip.Addr{}, false, nil
	}
	if s, pinned := cfg.GetIps()[slot]; pinned {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return a, false, fmt.Errorf("pin of slot %d: %w", slot, err)
		}
		return a, true, nil
	}
	if cfg.GetIpRange() == "" {
		return netip.Addr{}, false, nil
	}
	r, err := ipam.ParseRange(cfg.GetIpRange())
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("ip_range: %w", err)
	}
	a, inRange := r.Nth(slot - 1)
	if !inRange {
		return netip.Addr{}, false, fmt.Errorf("slot %d is past the end of ip_range %s", slot, cfg.GetIpRange())
	}
	return a, true, nil
}

// WithoutPins is spec with its networks' pins cleared, spec itself when it has none: what two
// task specs are compared by, for a pin change alone moves only the slots whose pin changed.
func WithoutPins(spec *api.TaskSpec) *api.TaskSpec {
	pinned := false
	for _, n := range spec.GetNetworks() {
		pinned = pinned || len(n.GetIps()) > 0 || n.GetIpRange() != ""
	}
	if !pinned {
		return spec
	}
	out := proto.Clone(spec).(*api.TaskSpec)
	for _, n := range out.Networks {
		n.Ips, n.IpRange = nil, ""
	}
	return out
}

// AddressesMatchPins reports whether t's addresses agree with the pins service's current spec
// sets for t's slot: on each network of the service, the address t was given is the pin, or,
// before t was given one, t's own spec pins the slot where the service does (the allocator takes
// a task's pins from its own spec, so a task adopted in place with other pins would take the old
// address). A slot the service does not pin agrees with any address.
func AddressesMatchPins(service *api.Service, t *api.Task) bool {
	for _, cfg := range service.GetSpec().GetTask().GetNetworks() {
		pin, pinned, err := PinFor(cfg, t.GetSlot())
		if err != nil {
			continue
		}
		if att := attachmentOn(t, cfg.GetTarget()); att != nil {
			if !pinned {
				continue
			}
			if p, err := netip.ParsePrefix(att.GetAddress()); err != nil || p.Addr() != pin {
				return false
			}
			continue
		}
		own, ownPinned := netip.Addr{}, false
		for _, tc := range t.GetSpec().GetNetworks() {
			if tc.GetTarget() == cfg.GetTarget() {
				own, ownPinned, _ = PinFor(tc, t.GetSlot())
			}
		}
		if ownPinned != pinned || own != pin {
			return false
		}
	}
	return true
}

// attachmentOn is t's address on network, nil before it was given one.
func attachmentOn(t *api.Task, network string) *api.NetworkAttachment {
	for _, att := range t.GetNetworks() {
		if att.GetNetworkId() == network {
			return att
		}
	}
	return nil
}
