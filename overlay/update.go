package overlay

// This file owns Update: program a change of a few endpoints of a network from what the
// Manager remembers of it (applied.go), without dumping the kernel or ensuring the device, so
// that its cost follows the size of the change, not of the network. Sync (sync.go) stays the
// way to program a whole view, a new device, or to repair.

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
)

// EndpointUpdate is a change of some of a network's endpoints, for Update.
type EndpointUpdate struct {
	// Set are endpoints added, or replacing the network's endpoint with the same IP (another
	// MAC, another VTEP). An IP may appear once.
	Set []Endpoint
	// Removed are the IPs of endpoints taken out; an IP the network has no endpoint at is no
	// error. Removals come first: an IP in both ends up as Set has it.
	Removed []netip.Addr
}

// Update programs u into network networkID as Sync would program the network's last Desired
// with u applied, and returns what it changed: it adds, replaces and deletes the FDB, bridge and
// neighbour entries of the endpoints u names, and the all-zeros FDB destination of a VTEP when
// the network's first remote endpoint there comes or its last one goes (a VTEP that the last
// Sync's Desired.Peers listed keeps its destination). Endpoints at the local VTEP get no entries,
// so one that moves here loses its entries.
//
// Update works from what the network's last successful Sync applied, kept current by each
// successful Update since: it neither dumps the kernel nor ensures the device, and its cost
// follows len(u.Set)+len(u.Removed). Changes are counted against that state; an endpoint set
// as the network already has it changes nothing. Hand edits of the kernel are Sync's to repair.
//
// Errors:
//   - bad input is refused with a *FieldError ("Set[1].MAC", "Removed[0]") and changes
//     nothing. Sync's rules for endpoints apply, to Set and to the network's endpoints that
//     stay: an IP once, a MAC at one VTEP;
//   - before the network's first successful Sync, and after a failed Sync or Update of it or
//     its Remove, Update changes nothing and returns an error wrapping ErrNotSynced: call Sync
//     with the network's whole desired state;
//   - when the kernel refuses an entry, Update stops there and returns what it changed with
//     the error; the network's state is forgotten, so the next Update returns ErrNotSynced.
func (m *Manager) Update(networkID string, u EndpointUpdate) (Changes, error) {
	if err := validateNetworkID(networkID); err != nil {
		return Changes{}, err
	}
	cu, err := checkUpdate(u)
	if err != nil {
		return Changes{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	name := DeviceName(networkID)
	s := m.applied[name]
	if s == nil || s.networkID != networkID {
		return Changes{}, fmt.Errorf("update network %s: %w", networkID, ErrNotSynced)
	}
	d, err := newStateDelta(s, cu)
	if err != nil {
		return Changes{}, err
	}
	p := planUpdate(d)
	if p.empty() {
		d.commit()
		return Changes{}, nil
	}
	log := m.log.With("network", networkID, "device", name)
	var ch Changes
	if err := p.apply(s.linkIndex, &ch, log); err != nil {
		delete(m.applied, name)
		return ch, fmt.Errorf("update network %s: device %q: %w", networkID, name, err)
	}
	d.commit()
	log.Debug("updated network overlay", "set", len(u.Set), "removed_ips", len(u.Removed),
		"added", ch.Added, "replaced", ch.Replaced, "removed", ch.Removed)
	return ch, nil
}

// updatePlan is the kernel work of one Update: entries to delete, then entries to set.
type updatePlan struct {
	delNeigh  []neighRecord
	delBridge [][6]byte
	delFDB    []fdbRecord // unicast and all-zeros
	setFDB    []fdbWrite
	setBridge [][6]byte
	setNeigh  []neighWrite
}

// fdbWrite is an FDB destination to set: new, or replacing the MAC's destination.
type fdbWrite struct {
	fdbRecord
	replaces bool
}

// neighWrite is a neighbour entry to set: new, or replacing the IP's entry.
type neighWrite struct {
	neighRecord
	replaces bool
}

// planUpdate compares the entries before and after d, key by key: the neighbour entry of each
// IP d touches, the FDB entry of each MAC, the all-zeros destination of each VTEP.
func planUpdate(d *stateDelta) updatePlan {
	var p updatePlan
	for _, ip := range d.ips {
		p.planNeigh(d, ip)
	}
	for _, mac := range d.macOrder {
		p.planFDB(d, mac)
	}
	for _, vtep := range d.vtepOrder {
		p.planFlood(d, vtep)
	}
	return p
}

// planNeigh plans the neighbour entry of ip: a remote endpoint has one, IP → MAC.
func (p *updatePlan) planNeigh(d *stateDelta, ip netip.Addr) {
	local := d.base.local
	before, had := d.base.endpoints[ip]
	after, has := d.endpoint(ip)
	had = had && before.vtep != local
	has = has && after.vtep != local
	switch {
	case had && !has:
		p.delNeigh = append(p.delNeigh, neighRecord{ip: ip, mac: macOf(before.mac)})
	case has && (!had || before.mac != after.mac):
		mac := append(net.HardwareAddr(nil), after.mac[:]...)
		p.setNeigh = append(p.setNeigh, neighWrite{neighRecord{ip: ip, mac: mac, permanent: true}, had})
	}
}

// planFDB plans the FDB entry and the bridge entry of mac: while remote endpoints hold it,
// MAC → their VTEP, and MAC → the device's port in the bridge. A move between remote VTEPs
// changes the FDB entry alone.
func (p *updatePlan) planFDB(d *stateDelta, mac [6]byte) {
	local := d.base.local
	before, after := d.base.macs[mac], d.macs[mac]
	had := before.count > 0 && before.vtep != local
	has := after.count > 0 && after.vtep != local
	switch {
	case had && !has:
		p.delFDB = append(p.delFDB, fdbRecord{mac: mac, dst: before.vtep, permanent: true})
		p.delBridge = append(p.delBridge, mac)
	case has && (!had || before.vtep != after.vtep):
		p.setFDB = append(p.setFDB, fdbWrite{fdbRecord{mac: mac, dst: after.vtep, permanent: true}, had})
		if !had {
			p.setBridge = append(p.setBridge, mac)
		}
	}
}

// planFlood plans the all-zeros destination of vtep.
func (p *updatePlan) planFlood(d *stateDelta, vtep netip.Addr) {
	had := d.base.floods(vtep, d.base.vteps[vtep])
	has := d.base.floods(vtep, d.vteps[vtep])
	switch {
	case had && !has:
		p.delFDB = append(p.delFDB, fdbRecord{dst: vtep, permanent: true})
	case has && !had:
		p.setFDB = append(p.setFDB, fdbWrite{fdbRecord{dst: vtep, permanent: true}, false})
	}
}

func (p updatePlan) empty() bool {
	return len(p.delNeigh)+len(p.delBridge)+len(p.delFDB)+len(p.setFDB)+len(p.setBridge)+len(p.setNeigh) == 0
}

// apply programs the plan on device linkIndex, deletions first, and counts into ch what it did.
// Entries are set with replace semantics (setFDB, setNeigh), so one the kernel holds already is
// rewritten harmlessly. It stops at the first entry the kernel refuses.
func (p updatePlan) apply(linkIndex int, ch *Changes, log *slog.Logger) error {
	h, err := openHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	for _, r := range p.delNeigh {
		removed, err := delNeigh(h, linkIndex, r)
		if err != nil {
			return err
		}
		countRemoved(ch, removed)
		log.Debug("removed neighbour entry", "ip", r.ip, "mac", r.mac, "already_gone", !removed)
	}
	// A MAC's bridge entry goes before its FDB entry and comes after it (tidiness: a frame the
	// device has no destination for goes to every peer in the all-zeros entries).
	for _, mac := range p.delBridge {
		removed, err := delBridge(h, linkIndex, mac)
		if err != nil {
			return err
		}
		countRemoved(ch, removed)
		log.Debug("removed bridge entry", "mac", macOf(mac), "already_gone", !removed)
	}
	for _, r := range p.delFDB {
		removed, err := delFDB(h, linkIndex, r)
		if err != nil {
			return err
		}
		countRemoved(ch, removed)
		log.Debug("removed FDB entry", "mac", macOf(r.mac), "dst", r.dst, "already_gone", !removed)
	}
	for _, w := range p.setFDB {
		if err := setFDB(h, linkIndex, w.fdbRecord); err != nil {
			return err
		}
		countSet(ch, w.replaces)
		log.Debug("programmed FDB entry", "mac", macOf(w.mac), "dst", w.dst, "replaced", w.replaces)
	}
	for _, mac := range p.setBridge {
		if err := setBridge(h, linkIndex, mac); err != nil {
			return err
		}
		countSet(ch, false)
		log.Debug("programmed bridge entry", "mac", macOf(mac))
	}
	for _, w := range p.setNeigh {
		if err := setNeigh(h, linkIndex, w.neighRecord); err != nil {
			return err
		}
		countSet(ch, w.replaces)
		log.Debug("programmed neighbour entry", "ip", w.ip, "mac", w.mac, "replaced", w.replaces)
	}
	return nil
}

func countRemoved(ch *Changes, removed bool) {
	if removed {
		ch.Removed++
	}
}

func countSet(ch *Changes, replaces bool) {
	if replaces {
		ch.Replaced++
	} else {
		ch.Added++
	}
}
