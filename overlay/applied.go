package overlay

// This file owns what the Manager remembers of each network it programmed: the endpoints and
// peers of the network's last successful Sync, kept current by every successful Update, and the
// state an Update leads to (a delta over the keys it touches). It lets Update work out the
// entries of a few endpoints without dumping the kernel; nothing here touches the kernel.

import (
	"fmt"
	"net/netip"
)

// networkState is what the Manager last programmed for one network.
type networkState struct {
	networkID string
	linkIndex int        // the network's VXLAN device
	local     netip.Addr // the node's VTEP: endpoints there get no entries
	endpoints map[netip.Addr]endpoint
	macs      map[[6]byte]macHolders
	vteps     map[netip.Addr]int  // remote endpoints per VTEP; only VTEPs that have some
	peers     map[netip.Addr]bool // the last Sync's Desired.Peers, without the local VTEP
}

// macHolders are the endpoints (local ones too) with one MAC: how many, and the one VTEP they
// are all at (Sync and Update refuse a MAC at two VTEPs).
type macHolders struct {
	vtep  netip.Addr
	count int
}

// newNetworkState is the state a successful Sync of w leaves on device linkIndex.
func newNetworkState(networkID string, linkIndex int, local netip.Addr, w wanted) *networkState {
	s := &networkState{
		networkID: networkID,
		linkIndex: linkIndex,
		local:     local,
		endpoints: make(map[netip.Addr]endpoint, len(w.endpoints)),
		macs:      make(map[[6]byte]macHolders, len(w.endpoints)),
		vteps:     make(map[netip.Addr]int),
		peers:     make(map[netip.Addr]bool, len(w.peers)),
	}
	for _, p := range w.peers {
		s.peers[p] = true
	}
	for _, ep := range w.endpoints {
		s.endpoints[ep.ip] = ep
		s.macs[ep.mac] = macHolders{vtep: ep.vtep, count: s.macs[ep.mac].count + 1}
		if ep.vtep != local {
			s.vteps[ep.vtep]++
		}
	}
	return s
}

// floods reports whether broadcasts go to vtep while it has n remote endpoints: it has some, or
// the last Sync named it a peer.
func (s *networkState) floods(vtep netip.Addr, n int) bool {
	return vtep != s.local && (n > 0 || s.peers[vtep])
}

// stateDelta is a network's state after an Update, for the keys the Update touches; each key
// list is in the order the key was first touched, so an Update's work has a stable order.
type stateDelta struct {
	base      *networkState
	endpoints map[netip.Addr]*endpoint // nil: no endpoint at that IP any more
	macs      map[[6]byte]macHolders   // count 0: no endpoint holds the MAC any more
	vteps     map[netip.Addr]int       // remote endpoints per VTEP
	ips       []netip.Addr
	macOrder  [][6]byte
	vtepOrder []netip.Addr
}

// newStateDelta returns the state the update u leads to from s: removals first, then Set. It
// refuses (with a *FieldError) a Set endpoint whose MAC another endpoint keeps at another VTEP.
func newStateDelta(s *networkState, u checkedUpdate) (*stateDelta, error) {
	n := len(u.set) + len(u.removed)
	d := &stateDelta{
		base:      s,
		endpoints: make(map[netip.Addr]*endpoint, n),
		macs:      make(map[[6]byte]macHolders, 2*n),
		vteps:     make(map[netip.Addr]int, 2*n),
	}
	for _, ip := range u.removed {
		d.remove(ip)
	}
	for i := range u.set {
		d.remove(u.set[i].ip)
	}
	for i := range u.set {
		if err := d.add(&u.set[i], fmt.Sprintf("Set[%d].MAC", i)); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// endpoint is the endpoint at ip after the update, if any.
func (d *stateDelta) endpoint(ip netip.Addr) (endpoint, bool) {
	if ep, touched := d.endpoints[ip]; touched {
		if ep == nil {
			return endpoint{}, false
		}
		return *ep, true
	}
	ep, ok := d.base.endpoints[ip]
	return ep, ok
}

// remove takes the endpoint at ip out, if there is one.
func (d *stateDelta) remove(ip netip.Addr) {
	ep, ok := d.endpoint(ip)
	if _, touched := d.endpoints[ip]; !touched {
		d.ips = append(d.ips, ip)
	}
	d.endpoints[ip] = nil
	if !ok {
		return
	}
	h := d.holders(ep.mac)
	h.count--
	d.macs[ep.mac] = h
	if ep.vtep != d.base.local {
		d.vteps[ep.vtep] = d.remoteAt(ep.vtep) - 1
	}
}

// add puts ep in, at an IP removed before. The MAC's other holders must be at ep's VTEP; field
// names ep's MAC in a refusal.
func (d *stateDelta) add(ep *endpoint, field string) error {
	h := d.holders(ep.mac)
	if h.count > 0 && h.vtep != ep.vtep {
		return invalid(field, "%s is also the MAC of another endpoint of the network, at VTEP %s, not %s", macOf(ep.mac), h.vtep, ep.vtep)
	}
	d.endpoints[ep.ip] = ep
	d.macs[ep.mac] = macHolders{vtep: ep.vtep, count: h.count + 1}
	if ep.vtep != d.base.local {
		d.vteps[ep.vtep] = d.remoteAt(ep.vtep) + 1
	}
	return nil
}

// holders are the holders of mac after the update so far; a MAC touched for the first time is
// recorded in macOrder.
func (d *stateDelta) holders(mac [6]byte) macHolders {
	if h, touched := d.macs[mac]; touched {
		return h
	}
	d.macOrder = append(d.macOrder, mac)
	return d.base.macs[mac]
}

// remoteAt is the number of remote endpoints at vtep after the update so far; a VTEP touched
// for the first time is recorded in vtepOrder.
func (d *stateDelta) remoteAt(vtep netip.Addr) int {
	if n, touched := d.vteps[vtep]; touched {
		return n
	}
	d.vtepOrder = append(d.vtepOrder, vtep)
	return d.base.vteps[vtep]
}

// commit makes the delta the network's state.
func (d *stateDelta) commit() {
	s := d.base
	for ip, ep := range d.endpoints {
		if ep == nil {
			delete(s.endpoints, ip)
		} else {
			s.endpoints[ip] = *ep
		}
	}
	for mac, h := range d.macs {
		if h.count == 0 {
			delete(s.macs, mac)
		} else {
			s.macs[mac] = h
		}
	}
	for vtep, n := range d.vteps {
		if n == 0 {
			delete(s.vteps, vtep)
		} else {
			s.vteps[vtep] = n
		}
	}
}
