package dns

// This file keeps a zone's PTR index (zoneRecords.ptr): which names each IP belongs to. Sync
// adds every service's entries; Update changes only the entries that differ between a service's
// records before and after, so that a task starting touches one IP. An IP may belong to names
// of several services (the input broke an invariant, and the server answers them all): each
// service adds and takes out only its own names.

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// reverseName is a name an IP belongs to: <slot>.<service>. for a slot's IP, <service>. (slot
// 0) for a VIP or a task of no slot. It is spelled out only for a PTR answer, so that building
// records makes no string per slot.
type reverseName struct {
	service string // the service's name in lower case
	slot    uint64 // 0: the service's own name
}

// String is the name, fully qualified: "3.web.", "web.".
func (r reverseName) String() string {
	if r.slot == 0 {
		return r.service + "."
	}
	return strconv.FormatUint(r.slot, 10) + "." + r.service + "."
}

// compareReverse orders names as their spellings sort.
func compareReverse(a, b reverseName) int { return strings.Compare(a.String(), b.String()) }

// reverseNames are the names an IP belongs to, sorted as spelled. Nearly every IP has one, held
// inline, so that the PTR index keeps no list per IP; more come only from input that broke an
// invariant (one IP in several services).
type reverseNames struct {
	first reverseName   // service "": no name at all
	more  []reverseName // after first; shared between versions, so never changed in place
}

// namesOf holds list, which is sorted, as reverseNames.
func namesOf(list []reverseName) reverseNames {
	if len(list) == 0 {
		return reverseNames{}
	}
	return reverseNames{first: list[0], more: slices.Clip(list[1:])}
}

// Len is the number of names.
func (n reverseNames) Len() int {
	if n.first.service == "" {
		return 0
	}
	return 1 + len(n.more)
}

// list returns the names in a new slice.
func (n reverseNames) list() []reverseName {
	if n.Len() == 0 {
		return nil
	}
	return append([]reverseName{n.first}, n.more...)
}

// with returns n with name added.
func (n reverseNames) with(name reverseName) reverseNames {
	switch {
	case n.Len() == 0:
		return reverseNames{first: name}
	case n.first == name || slices.Contains(n.more, name):
		return n
	}
	list := n.list()
	i, _ := slices.BinarySearchFunc(list, name, compareReverse)
	return namesOf(slices.Insert(list, i, name))
}

// without returns n with name taken out.
func (n reverseNames) without(name reverseName) reverseNames {
	return namesOf(slices.DeleteFunc(n.list(), func(have reverseName) bool { return have == name }))
}

// eachReverse calls fn with every IP of the service and the name a PTR query for it answers:
// <slot>.<service>. for a slot's IP, <service>. for the VIP and for a task of no slot (a global
// service's). An IP comes once per name.
func (rec *serviceRecords) eachReverse(fn func(ip netip.Addr, name reverseName)) {
	own := reverseName{service: rec.key}
	vip := rec.vip[0]
	if vip.IsValid() {
		fn(vip, own)
	}
	for _, s := range rec.slots {
		fn(s.addrs[0], reverseName{service: rec.key, slot: s.slot})
	}
	// Tasks and slot IPs are both sorted: walk them side by side to find the tasks of no slot.
	slotIPs := rec.slotAddrs
	for _, ip := range rec.tasks.addrs {
		for len(slotIPs) > 0 && slotIPs[0].Less(ip) {
			slotIPs = slotIPs[1:]
		}
		if (len(slotIPs) == 0 || slotIPs[0] != ip) && ip != vip {
			fn(ip, own)
		}
	}
}

// reverseEntry is one IP of a service's with the name a PTR query for it answers.
type reverseEntry struct {
	ip   netip.Addr
	name reverseName
}

// compareReverseEntry orders entries by IP, then name.
func compareReverseEntry(a, b reverseEntry) int {
	if c := a.ip.Compare(b.ip); c != 0 {
		return c
	}
	if c := strings.Compare(a.name.service, b.name.service); c != 0 {
		return c
	}
	return cmp.Compare(a.name.slot, b.name.slot)
}

// reverseEntries are the entries of rec (none for nil), sorted.
func (rec *serviceRecords) reverseEntries() []reverseEntry {
	if rec == nil {
		return nil
	}
	out := make([]reverseEntry, 0, 1+len(rec.slots)+len(rec.tasks.addrs))
	rec.eachReverse(func(ip netip.Addr, name reverseName) { out = append(out, reverseEntry{ip, name}) })
	slices.SortFunc(out, compareReverseEntry)
	return out
}

// replaceReverse changes what ptr holds of a service from the entries of before to those of
// after (nil: none), touching only the IPs whose names change: a task starting changes one.
func replaceReverse(ptr *trieEditor[netip.Addr, reverseNames], before, after *serviceRecords) {
	old, next := before.reverseEntries(), after.reverseEntries()
	for len(old) > 0 && len(next) > 0 {
		switch c := compareReverseEntry(old[0], next[0]); {
		case c < 0: // before's only
			dropReverse(ptr, old[0].ip, old[0].name)
			old = old[1:]
		case c > 0: // after's only
			addReverse(ptr, next[0].ip, next[0].name)
			next = next[1:]
		default: // in both: ptr has it already
			old, next = old[1:], next[1:]
		}
	}
	for _, e := range old {
		dropReverse(ptr, e.ip, e.name)
	}
	for _, e := range next {
		addReverse(ptr, e.ip, e.name)
	}
}

// addressCount estimates how many IPs the PTR index of services holds, to size it: each
// service's VIP, and the more of its tasks and its slots (a slot's IP is usually a running
// task's).
func addressCount(services []Service) int {
	n := 0
	for _, svc := range services {
		n += max(len(svc.Tasks), len(svc.Slots))
		if svc.VIP.IsValid() {
			n++
		}
	}
	return n
}

// addReverse adds name to the names ip belongs to. Two services' names on one IP break an
// invariant of the input; the server answers both.
func addReverse(ptr *trieEditor[netip.Addr, reverseNames], ip netip.Addr, name reverseName) {
	ptr.Upsert(ip, func(names reverseNames, _ bool) reverseNames { return names.with(name) })
}

// dropReverse takes name out of the names ip belongs to, and ip out of ptr when no name is
// left.
func dropReverse(ptr *trieEditor[netip.Addr, reverseNames], ip netip.Addr, name reverseName) {
	names, _ := ptr.Get(ip)
	switch left := names.without(name); {
	case left.Len() == names.Len():
	case left.Len() == 0:
		ptr.Delete(ip)
	default:
		ptr.Set(ip, left)
	}
}
