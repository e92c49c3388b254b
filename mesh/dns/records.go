package dns

// This file builds and changes the records queries are answered from. A generation (records)
// is the set of zones of one Sync; Sync builds the next one aside and swaps it in whole. Within a
// generation each zone holds its records (zoneRecords) through an atomic pointer, which Update
// swaps. zoneRecords never change once built (only the rotation counters inside them move): they
// keep each service's records in persistent maps (hashtrie.go), so the zoneRecords an Update
// makes share every untouched service's records with the ones before, and cost what the changed
// services hold, not what the zone holds. Every query reads one zoneRecords, so it sees each
// service either before or after an Update, never half of it.

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// records is one generation: the zones of one Sync.
type records struct {
	zones    map[string]*zone     // by network ID
	byListen map[netip.Addr]*zone // by Zone.Listen: the zone a listener answers for
}

// zone is one network of a generation.
type zone struct {
	network string // the network's ID
	name    string // the network's name, for logs
	// records are the network's current records: those Sync built, or the last Update's.
	records atomic.Pointer[zoneRecords]
}

// zoneRecords are one network's records.
type zoneRecords struct {
	// services maps a service's lower-case name ("web") to its records.
	services hashTrie[string, *serviceRecords]
	// ptr maps a VIP, slot or task IP to the names it belongs to, sorted: the answer to a PTR
	// query for its reverse name. An IP may belong to several services.
	ptr hashTrie[netip.Addr, reverseNames]
}

// serviceRecords are one service's names: <service>., tasks.<service>. and <slot>.<service>.
// Queries get pointers to its nameRecords, which never change.
type serviceRecords struct {
	key     string        // the service's name in lower case: "web"
	vip     [1]netip.Addr // the VIP; the zero Addr in endpoint mode dnsrr
	service nameRecord    // <service>.: the VIP, or (dnsrr) the task IPs
	tasks   nameRecord    // tasks.<service>.: the task IPs, sorted
	slots   []slotRecord  // by slot number
	// slotAddrs are the slots' IPs, sorted; each slot's record holds its own IP from here.
	slotAddrs []netip.Addr
}

// slotRecord is the record of <slot>.<service>.
type slotRecord struct {
	slot uint64
	nameRecord
}

// nameRecord is one name's addresses.
type nameRecord struct {
	addrs []netip.Addr
	// turn counts the answers given, to rotate addrs; nil for a name that does not rotate (a VIP,
	// a slot). It is carried from one generation to the next, and across an Update, while the
	// name exists, so frequent changes do not keep sending every first client to the same task.
	turn *atomic.Uint64
}

// emptyZoneRecords are the records of a zone with no service.
func emptyZoneRecords() *zoneRecords {
	return &zoneRecords{
		services: newHashTrie[string, *serviceRecords](hashString),
		ptr:      newHashTrie[netip.Addr, reverseNames](hashAddr),
	}
}

// buildRecords builds the generation for zones, which validateZones accepted; prev (nil for
// the first) lends its rotation counters.
func buildRecords(zones []Zone, prev *records) *records {
	r := &records{
		zones:    make(map[string]*zone, len(zones)),
		byListen: make(map[netip.Addr]*zone, len(zones)),
	}
	for _, z := range zones {
		before := emptyZoneRecords()
		if prev != nil && prev.zones[z.Network] != nil {
			before = prev.zones[z.Network].records.Load()
		}
		next := &zone{network: z.Network, name: z.Name}
		next.records.Store(buildZoneRecords(z.Services, before))
		r.zones[z.Network] = next
		if z.Listen.IsValid() {
			r.byListen[z.Listen] = next
		}
	}
	return r
}

// buildZoneRecords builds the records of a zone's services, whose names validateZones found
// unique; before (the zone's records before this Sync) lends the rotation counters of the names
// that stay.
func buildZoneRecords(services []Service, before *zoneRecords) *zoneRecords {
	zr := emptyZoneRecords()
	names, ptr := zr.services.Edit(len(services)), zr.ptr.Edit(addressCount(services))
	for _, svc := range services {
		key := strings.ToLower(svc.Name)
		serviceBefore, _ := before.services.Get(key)
		rec := buildService(key, svc, serviceBefore)
		names.Set(key, rec)
		rec.eachReverse(func(ip netip.Addr, name reverseName) { addReverse(&ptr, ip, name) })
	}
	return &zoneRecords{services: names.Done(), ptr: ptr.Done()}
}

// update returns zr with the services named in removed taken out, then those of set added, each
// in place of the one of the same name if there is one; zr does not change. Both were
// validated. The services that stay keep their rotation counters, as across a Sync. The cost
// follows the size of the services in set and removed, not the zone's: the result shares every
// other service's records, and every trie node off their paths, with zr.
func (zr *zoneRecords) update(set []Service, removed []string) *zoneRecords {
	names, ptr := zr.services.Edit(0), zr.ptr.Edit(0)
	for _, name := range removed {
		key := strings.ToLower(name)
		if old, ok := names.Get(key); ok {
			replaceReverse(&ptr, old, nil)
			names.Delete(key)
		}
	}
	for _, svc := range set {
		key := strings.ToLower(svc.Name)
		old, _ := names.Get(key)
		serviceBefore, _ := zr.services.Get(key) // also when removed named it: its names stay
		rec := buildService(key, svc, serviceBefore)
		names.Set(key, rec)
		replaceReverse(&ptr, old, rec)
	}
	return &zoneRecords{services: names.Done(), ptr: ptr.Done()}
}

// buildService builds the records of svc, whose lower-case name is key; before (nil if none)
// are the service's records before, which lend their rotation counters.
func buildService(key string, svc Service, before *serviceRecords) *serviceRecords {
	var serviceBefore, tasksBefore *nameRecord
	if before != nil {
		serviceBefore, tasksBefore = &before.service, &before.tasks
	}
	rec := &serviceRecords{key: key}
	tasks := slices.Clone(svc.Tasks)
	slices.SortFunc(tasks, netip.Addr.Compare)
	rec.tasks = nameRecord{addrs: tasks, turn: turnFrom(tasksBefore)}
	if svc.VIP.IsValid() {
		rec.vip[0] = svc.VIP
		rec.service = nameRecord{addrs: rec.vip[:]}
	} else {
		rec.service = nameRecord{addrs: tasks, turn: turnFrom(serviceBefore)}
	}
	if len(svc.Slots) > 0 {
		rec.slotAddrs = make([]netip.Addr, 0, len(svc.Slots))
		for _, ip := range svc.Slots {
			rec.slotAddrs = append(rec.slotAddrs, ip)
		}
		slices.SortFunc(rec.slotAddrs, netip.Addr.Compare)
		rec.slots = make([]slotRecord, 0, len(svc.Slots))
		for slot, ip := range svc.Slots {
			i, _ := slices.BinarySearchFunc(rec.slotAddrs, ip, netip.Addr.Compare)
			rec.slots = append(rec.slots, slotRecord{slot: slot, nameRecord: nameRecord{addrs: rec.slotAddrs[i : i+1 : i+1]}})
		}
		slices.SortFunc(rec.slots, func(a, b slotRecord) int { return cmp.Compare(a.slot, b.slot) })
	}
	return rec
}

// slot returns the record of slot, nil if the service has no such slot.
func (rec *serviceRecords) slot(slot uint64) *nameRecord {
	i, found := slices.BinarySearchFunc(rec.slots, slot, func(s slotRecord, slot uint64) int { return cmp.Compare(s.slot, slot) })
	if !found {
		return nil
	}
	return &rec.slots[i].nameRecord
}

// turnFrom returns the rotation counter of before, the same name's record before (nil if
// none), or a new counter when there was none.
func turnFrom(before *nameRecord) *atomic.Uint64 {
	if before != nil && before.turn != nil {
		return before.turn
	}
	return new(atomic.Uint64)
}

// table returns the zone's names (lower case, without the trailing dot) with their addresses, in
// their unrotated order; names without addresses are left out, as nothing is served for them.
func (zr *zoneRecords) table() map[string][]netip.Addr {
	out := make(map[string][]netip.Addr, 3*zr.services.Len())
	put := func(name string, addrs []netip.Addr) {
		if len(addrs) > 0 {
			out[name] = slices.Clone(addrs)
		}
	}
	for key, rec := range zr.services.All() {
		put(key, rec.service.addrs)
		put("tasks."+key, rec.tasks.addrs)
		for _, s := range rec.slots {
			put(strconv.FormatUint(s.slot, 10)+"."+key, s.addrs)
		}
	}
	return out
}
