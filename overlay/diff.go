package overlay

// This file compares the entries a device must hold with the ones it holds, without touching the
// kernel. Sync applies the result and Inspect reports it, so the two always agree on what is
// wrong.

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// fdbRecord is one FDB destination of a VXLAN device: a MAC and one VTEP it is sent to. The
// all-zeros MAC (broadcast and unknown unicast) may have several destinations, one per peer; a
// unicast MAC has one.
type fdbRecord struct {
	mac       [6]byte
	dst       netip.Addr // the VTEP; 0.0.0.0 for a kernel entry without destination
	vni       uint32     // 0: the device's own VNI (the kernel reports no other then)
	permanent bool
}

func (r fdbRecord) flood() bool { return r.mac == [6]byte{} }

// neighRecord is one neighbour entry of a VXLAN device: IP → MAC.
type neighRecord struct {
	ip        netip.Addr
	mac       net.HardwareAddr // nil for a kernel entry without link-layer address
	permanent bool
}

// bridgeRecord is one entry of the bridge's forwarding table on the VXLAN device's port: frames
// to mac leave the bridge through the device, which sends them to the MAC's VTEP (a local entry
// keeps them on the node instead).
type bridgeRecord struct {
	mac  [6]byte
	kind BridgeKind
}

// Status says how an entry compares with the desired state.
type Status string

// The statuses of Inspect's entries.
const (
	StatusOK      Status = "ok"      // desired and programmed alike
	StatusMissing Status = "missing" // desired, not in the kernel
	StatusExtra   Status = "extra"   // in the kernel, not desired
	StatusWrong   Status = "wrong"   // in the kernel, but not as desired (another VTEP or MAC, not permanent)
)

// fdbDiff is one FDB destination compared: want and/or have, and what to do about it.
type fdbDiff struct {
	status Status
	want   *fdbRecord // nil for extra
	have   *fdbRecord // nil for missing
	detail string     // why an entry is wrong
}

// neighDiff is one neighbour entry compared.
type neighDiff struct {
	status Status
	want   *neighRecord
	have   *neighRecord
	detail string
}

// bridgeDiff is one bridge forwarding entry compared.
type bridgeDiff struct {
	status Status
	want   *bridgeRecord
	have   *bridgeRecord
	detail string
}

func (d bridgeDiff) mac() [6]byte {
	if d.want != nil {
		return d.want.mac
	}
	return d.have.mac
}

// diffBridge compares the bridge's forwarding entries on the device's port by MAC: a wanted MAC
// must have a static entry there (a learnt one is wrong: it would age out; a local one sends the
// frames to the node), and an entry of a MAC not wanted is extra.
func diffBridge(want, have []bridgeRecord) []bridgeDiff {
	haveByMAC := make(map[[6]byte]*bridgeRecord, len(have))
	for i := range have {
		haveByMAC[have[i].mac] = &have[i]
	}
	out := make([]bridgeDiff, 0, len(want))
	for i := range want {
		w := &want[i]
		h, ok := haveByMAC[w.mac]
		delete(haveByMAC, w.mac)
		d := bridgeDiff{status: StatusOK, want: w, have: h}
		switch {
		case !ok:
			d.status = StatusMissing
		case h.kind != BridgeStatic:
			d.status, d.detail = StatusWrong, fmt.Sprintf("%s, not %s", h.kind, BridgeStatic)
		}
		out = append(out, d)
	}
	for _, h := range haveByMAC {
		out = append(out, bridgeDiff{status: StatusExtra, have: h})
	}
	slices.SortFunc(out, func(a, b bridgeDiff) int {
		ma, mb := a.mac(), b.mac()
		return bytes.Compare(ma[:], mb[:])
	})
	return out
}

// diffFDB compares the FDB destinations. The all-zeros MAC is a set of destinations, compared
// one by one (ok, wrong if not permanent, extra, missing). A unicast MAC wants one destination: a kernel destination that equals it is ok
// (wrong if not permanent or of another VNI), one other destination is wrong (the endpoint moved:
// replace it), and any further ones are extra.
func diffFDB(want, have []fdbRecord) []fdbDiff {
	haveByMAC := make(map[[6]byte][]fdbRecord)
	for _, h := range have {
		haveByMAC[h.mac] = append(haveByMAC[h.mac], h)
	}
	var out []fdbDiff
	wantFlood := make(map[netip.Addr]*fdbRecord)
	for i := range want {
		w := &want[i]
		if w.flood() {
			wantFlood[w.dst] = w
			continue
		}
		hs := haveByMAC[w.mac]
		delete(haveByMAC, w.mac)
		match := slices.IndexFunc(hs, func(h fdbRecord) bool { return h.dst == w.dst })
		if match < 0 && len(hs) > 0 {
			match = 0 // the one to replace
		}
		for j := range hs {
			h := &hs[j]
			if j != match {
				out = append(out, fdbDiff{status: StatusExtra, have: h})
				continue
			}
			out = append(out, compareFDB(w, h))
		}
		if match < 0 {
			out = append(out, fdbDiff{status: StatusMissing, want: w})
		}
	}
	// A flood destination of another VNI is another destination: appending the wanted one
	// would leave it in place.
	for _, h := range haveByMAC[[6]byte{}] {
		if w, ok := wantFlood[h.dst]; ok && h.vni == 0 {
			delete(wantFlood, h.dst)
			out = append(out, compareFDB(w, &h))
			continue
		}
		out = append(out, fdbDiff{status: StatusExtra, have: &h})
	}
	delete(haveByMAC, [6]byte{})
	for _, w := range wantFlood {
		out = append(out, fdbDiff{status: StatusMissing, want: w})
	}
	for _, hs := range haveByMAC {
		for j := range hs {
			out = append(out, fdbDiff{status: StatusExtra, have: &hs[j]})
		}
	}
	slices.SortFunc(out, func(a, b fdbDiff) int {
		ra, rb := a.record(), b.record()
		return cmp.Or(bytes.Compare(ra.mac[:], rb.mac[:]), ra.dst.Compare(rb.dst), a.haveDst().Compare(b.haveDst()))
	})
	return out
}

// compareFDB compares a destination wanted with the kernel's one for the same MAC.
func compareFDB(w, h *fdbRecord) fdbDiff {
	d := fdbDiff{status: StatusWrong, want: w, have: h}
	switch {
	case h.dst != w.dst:
		d.detail = fmt.Sprintf("at VTEP %s, want %s", h.dst, w.dst)
	case h.vni != 0:
		d.detail = fmt.Sprintf("VNI %d, want the device's", h.vni)
	case !h.permanent:
		d.detail = "not permanent"
	default:
		d.status = StatusOK
	}
	return d
}

// record is the diff's entry for sorting and reporting: the wanted one when there is one.
func (d fdbDiff) record() fdbRecord {
	if d.want != nil {
		return *d.want
	}
	return *d.have
}

// haveDst is the kernel's destination, or the zero Addr for a missing entry.
func (d fdbDiff) haveDst() netip.Addr {
	if d.have == nil {
		return netip.Addr{}
	}
	return d.have.dst
}

// diffNeigh compares neighbour entries by IP.
func diffNeigh(want, have []neighRecord) []neighDiff {
	haveByIP := make(map[netip.Addr]*neighRecord, len(have))
	for i := range have {
		haveByIP[have[i].ip] = &have[i]
	}
	var out []neighDiff
	for i := range want {
		w := &want[i]
		h, ok := haveByIP[w.ip]
		delete(haveByIP, w.ip)
		d := neighDiff{status: StatusWrong, want: w, have: h}
		switch {
		case !ok:
			d.status = StatusMissing
		case !bytes.Equal(h.mac, w.mac):
			d.detail = fmt.Sprintf("MAC %s, want %s", macText(h.mac), w.mac)
		case !h.permanent:
			d.detail = "not permanent"
		default:
			d.status = StatusOK
		}
		out = append(out, d)
	}
	for _, h := range haveByIP {
		out = append(out, neighDiff{status: StatusExtra, have: h})
	}
	slices.SortFunc(out, func(a, b neighDiff) int { return a.ip().Compare(b.ip()) })
	return out
}

func (d neighDiff) ip() netip.Addr {
	if d.want != nil {
		return d.want.ip
	}
	return d.have.ip
}

func macText(mac net.HardwareAddr) string {
	if len(mac) == 0 {
		return "none"
	}
	return mac.String()
}

func macOf(m [6]byte) net.HardwareAddr {
	return net.HardwareAddr(m[:])
}
