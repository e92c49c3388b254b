package main

// This file owns the comparison behind `netctl overlay inspect`: a network's overlay on one node
// as the cluster wants it (from the leader's endpoint views) next to what the node's kernel has
// (as its agent read it), entry by entry. It does no I/O.

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/shoal/shoal/api"
)

// vxlanPort is the UDP port shoal's VXLAN devices use.
const vxlanPort = 4789

// floodMAC is the all-zeros MAC of the FDB entries that replicate broadcasts to a peer.
const floodMAC = "00:00:00:00:00:00"

// Entry statuses, as the overlay package names them.
const (
	statusOK      = "ok"
	statusMissing = "missing"
	statusExtra   = "extra"
	statusWrong   = "wrong"
)

// Kinds of a bridge forwarding entry, the values of its overlayEntry (as the agent reports them).
const (
	bridgeStatic = "static" // programmed by the overlay, kept until it is deleted
	bridgeLearnt = "learnt" // learnt by the bridge from a frame, aged out by the kernel
	bridgeLocal  = "local"  // the bridge's own address: frames to it go to the node
)

// overlayEntry is one FDB (Key a MAC, values VTEPs), neighbour (Key an IP, values MACs) or bridge
// forwarding entry on the VXLAN port (Key a MAC, values its kind: bridgeStatic, bridgeLearnt or
// bridgeLocal), desired and/or programmed.
type overlayEntry struct {
	Key        string `json:"key"`
	Desired    string `json:"desired,omitempty"`
	Programmed string `json:"programmed,omitempty"`
	Status     string `json:"status"`
	Detail     string `json:"detail,omitempty"`
}

// overlayView is a network's overlay on a node, compared.
type overlayView struct {
	Network    string         `json:"network"`
	NetworkID  string         `json:"network_id"`
	VNI        uint32         `json:"vni"`
	Subnets    []string       `json:"subnets"`
	Node       string         `json:"node"`
	NodeID     string         `json:"node_id"`
	VTEP       string         `json:"vtep"`
	Device     string         `json:"device"`
	Exists     bool           `json:"device_exists"`
	DeviceWant bool           `json:"device_wanted"` // the node runs a task of the network
	MTU        uint32         `json:"mtu"`
	Local      string         `json:"local"`
	Master     string         `json:"master"`
	Up         bool           `json:"up"`
	Problems   []string       `json:"device_problems"`
	Peers      []string       `json:"peers"`
	FDB        []overlayEntry `json:"fdb"`
	Neighbours []overlayEntry `json:"neighbours"`
	// BridgeFDB are the bridge's forwarding entries on the VXLAN device's port: one static entry
	// per remote endpoint's MAC, so frames to it are not flooded to every port.
	BridgeFDB []overlayEntry `json:"bridge_fdb"`
}

// Differences counts what is not as desired.
func (v overlayView) Differences() int {
	n := len(v.Problems)
	for _, entries := range [][]overlayEntry{v.FDB, v.Neighbours, v.BridgeFDB} {
		for _, e := range entries {
			if e.Status != statusOK {
				n++
			}
		}
	}
	return n
}

// nodeVTEP is a node's data-path address as the cluster has it.
func nodeVTEP(n *api.Node) string {
	if a := n.GetDescription().GetDataPathAddr(); a != "" {
		return a
	}
	addr := n.GetStatus().GetAddr()
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().String()
	}
	return addr
}

// bridgeOf is the name shoal-bridge gives network id's bridge ("shl" and 10 characters of the ID).
func bridgeOf(id string) string { return "shl" + id[:min(len(id), 10)] }

// deviceOf is the name the overlay gives network id's VXLAN device ("shx" and 10 characters of the ID).
func deviceOf(id string) string { return "shx" + id[:min(len(id), 10)] }

// compareOverlay compares r's endpoints, as seen from r's node, with its kernel state.
func compareOverlay(r *api.InspectOverlayResponse) overlayView {
	nw, node, k := r.GetNetwork(), r.GetNode(), r.GetKernel()
	vtep := nodeVTEP(node)
	v := overlayView{
		Network: networkName(nw), NetworkID: nw.GetId(), VNI: nw.GetVni(),
		Node: node.GetDescription().GetHostname(), NodeID: node.GetId(), VTEP: vtep,
		Device: k.GetDevice(), Exists: k.GetDeviceExists(), MTU: k.GetMtu(), Local: k.GetLocal(),
		Master: k.GetMaster(), Up: k.GetUp(),
	}
	for _, s := range nw.GetSpec().GetIpam() {
		v.Subnets = append(v.Subnets, s.GetSubnet())
	}
	if v.Device == "" {
		v.Device = deviceOf(nw.GetId())
	}

	wantFDB, wantNeigh := map[string]string{}, map[string]string{}
	peers := map[string]bool{}
	for _, ep := range r.GetEndpoints() {
		if ep.GetVtep() == vtep {
			v.DeviceWant = true
			continue
		}
		wantFDB[ep.GetMac()] = ep.GetVtep()
		wantNeigh[ep.GetIp()] = ep.GetMac()
		peers[ep.GetVtep()] = true
	}
	v.Peers = slices.SortedFunc(func(yield func(string) bool) {
		for p := range peers {
			if !yield(p) {
				return
			}
		}
	}, compareAddrs)

	switch {
	case !k.GetDeviceExists() && !v.DeviceWant:
		// No task of the network here: no device, and nothing to forward.
		return v
	case !k.GetDeviceExists():
		v.Problems = append(v.Problems, "missing: the node runs a task of the network")
	default:
		v.Problems = deviceProblems(k, nw, vtep)
	}

	// FDB: unicast entries by MAC, flood entries by (MAC, VTEP).
	haveFDB := map[string]*api.OverlayKernelState_FDBEntry{}
	haveFlood := map[string]*api.OverlayKernelState_FDBEntry{}
	for _, e := range k.GetFdb() {
		if e.GetMac() == floodMAC {
			haveFlood[e.GetDst()] = e
		} else {
			haveFDB[normalMAC(e.GetMac())] = e
		}
	}
	for mac, want := range wantFDB {
		v.FDB = append(v.FDB, compareEntry(mac, want, haveFDB[mac].GetDst(), haveFDB[mac] != nil, haveFDB[mac].GetPermanent()))
		delete(haveFDB, mac)
	}
	for mac, e := range haveFDB {
		v.FDB = append(v.FDB, overlayEntry{Key: mac, Programmed: e.GetDst(), Status: statusExtra})
	}
	for p := range peers {
		e := haveFlood[p]
		v.FDB = append(v.FDB, compareEntry(floodMAC, p, e.GetDst(), e != nil, e.GetPermanent()))
		delete(haveFlood, p)
	}
	for dst := range haveFlood {
		v.FDB = append(v.FDB, overlayEntry{Key: floodMAC, Programmed: dst, Status: statusExtra})
	}

	haveNeigh := map[string]*api.OverlayKernelState_NeighEntry{}
	for _, e := range k.GetNeigh() {
		haveNeigh[e.GetIp()] = e
	}
	for ip, want := range wantNeigh {
		e := haveNeigh[ip]
		v.Neighbours = append(v.Neighbours, compareEntry(ip, want, normalMAC(e.GetMac()), e != nil, e.GetPermanent()))
		delete(haveNeigh, ip)
	}
	for ip, e := range haveNeigh {
		v.Neighbours = append(v.Neighbours, overlayEntry{Key: ip, Programmed: e.GetMac(), Status: statusExtra})
	}

	// Bridge: a static entry on the VXLAN port per remote endpoint's MAC, as in the FDB.
	haveBridge := map[string]*api.OverlayKernelState_BridgeEntry{}
	for _, e := range k.GetBridgeFdb() {
		haveBridge[normalMAC(e.GetMac())] = e
	}
	for mac := range wantFDB {
		e := haveBridge[mac]
		v.BridgeFDB = append(v.BridgeFDB, compareEntry(mac, bridgeStatic, e.GetKind(), e != nil, true))
		delete(haveBridge, mac)
	}
	for mac, e := range haveBridge {
		v.BridgeFDB = append(v.BridgeFDB, overlayEntry{Key: mac, Programmed: e.GetKind(), Status: statusExtra})
	}
	sortEntries(v.FDB)
	sortEntries(v.Neighbours)
	sortEntries(v.BridgeFDB)
	return v
}

// compareEntry is one desired entry key → want against what the kernel has.
func compareEntry(key, want, have string, present, permanent bool) overlayEntry {
	e := overlayEntry{Key: key, Desired: want, Programmed: have, Status: statusOK}
	switch {
	case !present:
		e.Status, e.Programmed = statusMissing, ""
	case have != want:
		e.Status = statusWrong
	case !permanent:
		e.Status, e.Detail = statusWrong, "not permanent"
	}
	return e
}

// deviceProblems says how the kernel's device differs from what the network and node want.
func deviceProblems(k *api.OverlayKernelState, nw *api.Network, vtep string) []string {
	var p []string
	if k.GetVni() != nw.GetVni() {
		p = append(p, fmt.Sprintf("VNI %d, want %d", k.GetVni(), nw.GetVni()))
	}
	if k.GetLocal() != vtep {
		p = append(p, fmt.Sprintf("local %s, want %s", orNone(k.GetLocal()), vtep))
	}
	if k.GetPort() != vxlanPort {
		p = append(p, fmt.Sprintf("port %d, want %d", k.GetPort(), vxlanPort))
	}
	if want := bridgeOf(nw.GetId()); k.GetMaster() != want {
		p = append(p, fmt.Sprintf("master %s, want %s", orNone(k.GetMaster()), want))
	}
	if !k.GetUp() {
		p = append(p, "down, want up")
	}
	if k.GetLearning() {
		p = append(p, "learning on, want off")
	}
	if !k.GetProxy() {
		p = append(p, "ARP proxy off, want on")
	}
	return p
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// normalMAC is mac in net.HardwareAddr's spelling, mac itself if it is not one.
func normalMAC(mac string) string {
	if hw, err := net.ParseMAC(mac); err == nil {
		return hw.String()
	}
	return mac
}

func compareAddrs(a, b string) int {
	x, errx := netip.ParseAddr(a)
	y, erry := netip.ParseAddr(b)
	if errx == nil && erry == nil {
		return x.Compare(y)
	}
	return cmp.Compare(a, b)
}

// sortEntries orders es by key, desired and programmed value, as compareAddrs does, parsing
// each value once: a network of thousands of tasks has thousands of entries.
func sortEntries(es []overlayEntry) {
	type sortable struct {
		entry                    overlayEntry
		key, desired, programmed addrText
	}
	list := make([]sortable, len(es))
	for i, e := range es {
		list[i] = sortable{e, addrTextOf(e.Key), addrTextOf(e.Desired), addrTextOf(e.Programmed)}
	}
	slices.SortFunc(list, func(a, b sortable) int {
		return cmp.Or(a.key.compare(b.key), a.desired.compare(b.desired), a.programmed.compare(b.programmed))
	})
	for i := range list {
		es[i] = list[i].entry
	}
}

// addrText is a value parsed once for sorting: its address, when it is one, and its text.
type addrText struct {
	addr netip.Addr
	text string
}

func addrTextOf(s string) addrText {
	a, _ := netip.ParseAddr(s)
	return addrText{addr: a, text: s}
}

// compare orders like compareAddrs.
func (x addrText) compare(y addrText) int {
	if x.addr.IsValid() && y.addr.IsValid() {
		return x.addr.Compare(y.addr)
	}
	return cmp.Compare(x.text, y.text)
}
