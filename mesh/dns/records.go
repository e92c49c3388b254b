package dns

// This file builds one generation of records from the zones Sync is given. A generation never
// changes once built (only the rotation counters inside it move); Sync builds the next one aside
// and swaps it in whole, so every query sees one generation or the other.

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// records is one generation of every zone's records.
type records struct {
	zones    map[string]*zoneRecords     // by network ID
	byListen map[netip.Addr]*zoneRecords // by Zone.Listen: the zone a listener answers for
}

// zoneRecords are one network's records.
type zoneRecords struct {
	network string // the network's ID
	name    string // the network's name, for logs
	// names maps a lower-case fully qualified name to its record: <service>. and
	// tasks.<service>. of every service (with no addresses when nothing runs), <slot>.<service>.
	// of every slot.
	names map[string]*nameRecord
	// ptr maps a VIP, slot or task IP to the names it belongs to, sorted: the answer to a PTR
	// query for its reverse name.
	ptr map[netip.Addr][]string
}

// nameRecord is one name's addresses.
type nameRecord struct {
	addrs []netip.Addr
	// turn counts the answers given, to rotate addrs; nil for a name that does not rotate (a VIP,
	// a slot). It is carried from one generation to the next while the name exists, so
	// frequent Syncs do not keep sending every first client to the same task.
	turn *atomic.Uint64
}

// buildRecords builds the generation for zones, which validateZones accepted; prev (nil for
// the first) lends its rotation counters.
func buildRecords(zones []Zone, prev *records) *records {
	r := &records{
		zones:    make(map[string]*zoneRecords, len(zones)),
		byListen: make(map[netip.Addr]*zoneRecords, len(zones)),
	}
	for _, z := range zones {
		var prevZone *zoneRecords
		if prev != nil {
			prevZone = prev.zones[z.Network]
		}
		zr := buildZone(z, prevZone)
		r.zones[z.Network] = zr
		if z.Listen.IsValid() {
			r.byListen[z.Listen] = zr
		}
	}
	return r
}

// buildZone builds one zone's records.
func buildZone(z Zone, prev *zoneRecords) *zoneRecords {
	zr := &zoneRecords{
		network: z.Network,
		name:    z.Name,
		names:   make(map[string]*nameRecord, 3*len(z.Services)),
		ptr:     make(map[netip.Addr][]string, 2*len(z.Services)),
	}
	for _, svc := range z.Services {
		service := strings.ToLower(svc.Name) + "."
		tasks := slices.Clone(svc.Tasks)
		slices.SortFunc(tasks, netip.Addr.Compare)

		tasksName := "tasks." + service
		zr.names[tasksName] = &nameRecord{addrs: tasks, turn: prev.turnOf(tasksName)}
		if svc.VIP.IsValid() {
			zr.names[service] = &nameRecord{addrs: []netip.Addr{svc.VIP}}
			zr.ptr[svc.VIP] = append(zr.ptr[svc.VIP], service)
		} else {
			zr.names[service] = &nameRecord{addrs: tasks, turn: prev.turnOf(service)}
		}

		slotIPs := make(map[netip.Addr]bool, len(svc.Slots))
		for slot, ip := range svc.Slots {
			slotName := strconv.FormatUint(slot, 10) + "." + service
			zr.names[slotName] = &nameRecord{addrs: []netip.Addr{ip}}
			zr.ptr[ip] = append(zr.ptr[ip], slotName)
			slotIPs[ip] = true
		}
		for _, ip := range tasks {
			if !slotIPs[ip] { // a task of no slot (a global service's): the service's name
				zr.ptr[ip] = append(zr.ptr[ip], service)
			}
		}
	}
	for ip, targets := range zr.ptr {
		if len(targets) > 1 { // an IP of two services: the input broke an invariant; answer both
			slices.Sort(targets)
			zr.ptr[ip] = slices.Compact(targets)
		}
	}
	return zr
}

// turnOf returns the rotation counter of name in the previous generation, or a new one.
func (zr *zoneRecords) turnOf(name string) *atomic.Uint64 {
	if zr != nil {
		if rec := zr.names[name]; rec != nil && rec.turn != nil {
			return rec.turn
		}
	}
	return new(atomic.Uint64)
}

// table returns the zone's names (lower case, without the trailing dot) with their addresses, in
// their unrotated order; names without addresses are left out, as nothing is served for them.
func (zr *zoneRecords) table() map[string][]netip.Addr {
	out := make(map[string][]netip.Addr, len(zr.names))
	for name, rec := range zr.names {
		if len(rec.addrs) > 0 {
			out[strings.TrimSuffix(name, ".")] = slices.Clone(rec.addrs)
		}
	}
	return out
}
