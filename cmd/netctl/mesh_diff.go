package main

// This file owns the comparison behind `netctl check`, `vip ls` and `ingress ls`: a node's
// service mesh as the cluster wants it (mesh_view.go) against what the node reported of its
// kernel and DNS server — VIPs, published ports, DNS records and listeners, and the overlay of
// every network with a device there — as one difference per line. It does no I/O.

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal/shoal/agent/dataplane"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/mesh"
)

// meshDifference is one way a node's mesh differs from the desired one.
type meshDifference struct {
	// Kind is what differs: "mesh" (the report itself), "vip", "port", "dns", "dns listener",
	// "overlay device", "overlay fdb" or "overlay neighbour".
	Kind string `json:"kind"`
	// Key names the object: a VIP, "tcp/8080", a DNS name, an address, a device, a MAC.
	Key string `json:"key,omitempty"`
	// Of is the service or network the object belongs to, by name.
	Of     string `json:"of,omitempty"`
	Detail string `json:"detail"`
}

// String is the difference on one line: "vip 10.0.0.2 (web): want backends [10.0.0.5 10.0.0.6],
// kernel has [10.0.0.5]".
func (d meshDifference) String() string {
	s := d.Kind
	if d.Key != "" {
		s += " " + d.Key
	}
	if d.Of != "" {
		s += " (" + d.Of + ")"
	}
	return s + ": " + d.Detail
}

// diffMesh compares the mesh r's node reported with the one r's views want of it. r.Overlay is
// taken as every overlay device the node has (InspectMesh with overlay set).
func diffMesh(r *api.InspectMeshResponse) []meshDifference {
	v := newMeshView(r)
	k := r.GetKernel()
	var diffs []meshDifference
	switch {
	case k == nil:
		diffs = append(diffs, meshDifference{Kind: "mesh", Detail: "not read: the node reported no mesh state"})
	case k.GetBackend() == "" && k.GetError() != "":
		// The node runs no mesh (or could not say which): nothing of it to compare.
		diffs = append(diffs, meshDifference{Kind: "mesh", Detail: "not read: " + k.GetError()})
	case k.GetError() != "":
		// The load balancer could not be read; the DNS server's records come from memory.
		diffs = append(diffs, meshDifference{Kind: "mesh", Detail: "not read: " + k.GetError()})
		diffs = append(diffs, v.diffDNS()...)
	default:
		for _, p := range pairVIPs(v.want.VIPs, k.GetVips()) {
			diffs = append(diffs, v.vipDifferences(p)...)
		}
		for _, p := range pairPorts(v.want.Ports, k.GetPorts()) {
			diffs = append(diffs, v.portDifferences(p)...)
		}
		diffs = append(diffs, v.diffDNS()...)
	}
	// What the node's own view wants of its kernel objects, object by object: a broken rule or
	// map element the programmed state above cannot show.
	for _, d := range k.GetLbDifferences() {
		diffs = append(diffs, meshDifference{Kind: "kernel", Detail: d})
	}
	return append(diffs, v.diffOverlay()...)
}

// vipPair is one VIP desired, programmed, or both.
type vipPair struct {
	Addr string
	Want *mesh.VIP
	Have *api.VIPKernelState
}

// pairVIPs pairs desired and programmed VIPs by address, sorted by address.
func pairVIPs(want []mesh.VIP, have []*api.VIPKernelState) []vipPair {
	byAddr := map[string]*vipPair{}
	pair := func(addr string) *vipPair {
		if byAddr[addr] == nil {
			byAddr[addr] = &vipPair{Addr: addr}
		}
		return byAddr[addr]
	}
	for i := range want {
		pair(want[i].Addr.String()).Want = &want[i]
	}
	for _, h := range have {
		pair(normalAddr(h.GetVip())).Have = h
	}
	out := make([]vipPair, 0, len(byAddr))
	for _, addr := range slices.SortedFunc(maps.Keys(byAddr), compareAddrs) {
		out = append(out, *byAddr[addr])
	}
	return out
}

// vipDifferences says how the programmed VIP differs from the desired one.
func (v meshView) vipDifferences(p vipPair) []meshDifference {
	d := meshDifference{Kind: "vip", Key: p.Addr}
	if p.Want != nil {
		d.Of = p.Want.Name
	} else {
		d.Of = v.serviceName(p.Have.GetServiceId())
	}
	var details []string
	switch {
	case p.Have == nil:
		details = append(details, "missing; want backends "+formatList(wantVIPBackends(p.Want)))
	case p.Want == nil:
		details = append(details, "not wanted; kernel has backends "+formatList(haveVIPBackends(p.Have)))
	default:
		if p.Have.GetServiceId() != p.Want.Service || p.Have.GetNetworkId() != p.Want.Network {
			details = append(details, fmt.Sprintf("want service %s on network %s, kernel has service %s on network %s",
				v.serviceName(p.Want.Service), v.networkName(p.Want.Network),
				v.serviceName(p.Have.GetServiceId()), v.networkName(p.Have.GetNetworkId())))
		}
		if want, have := wantVIPBackends(p.Want), haveVIPBackends(p.Have); !slices.Equal(want, have) {
			details = append(details, fmt.Sprintf("want backends %s, kernel has %s", formatList(want), formatList(have)))
		}
	}
	return withDetails(d, details)
}

func wantVIPBackends(w *mesh.VIP) []string {
	out := make([]string, 0, len(w.Backends))
	for _, b := range w.Backends {
		out = append(out, b.String())
	}
	return sortedAddrs(out)
}

func haveVIPBackends(h *api.VIPKernelState) []string {
	out := make([]string, 0, len(h.GetBackends()))
	for _, b := range h.GetBackends() {
		out = append(out, normalAddr(b))
	}
	return sortedAddrs(out)
}

// portPair is one published port desired, programmed, or both.
type portPair struct {
	Key  string // "tcp/8080"
	Want *mesh.Port
	Have *api.PortKernelState
}

// pairPorts pairs desired and programmed ports by protocol and published port, sorted so.
func pairPorts(want []mesh.Port, have []*api.PortKernelState) []portPair {
	byKey := map[string]*portPair{}
	pair := func(key string) *portPair {
		if byKey[key] == nil {
			byKey[key] = &portPair{Key: key}
		}
		return byKey[key]
	}
	for i := range want {
		pair(want[i].Key()).Want = &want[i]
	}
	for _, h := range have {
		pair(h.GetProtocol() + "/" + strconv.FormatUint(uint64(h.GetPublishedPort()), 10)).Have = h
	}
	out := make([]portPair, 0, len(byKey))
	for _, key := range slices.SortedFunc(maps.Keys(byKey), comparePortKeys) {
		out = append(out, *byKey[key])
	}
	return out
}

// comparePortKeys orders "tcp/80" before "tcp/443" before "udp/53".
func comparePortKeys(a, b string) int {
	pa, na, _ := strings.Cut(a, "/")
	pb, nb, _ := strings.Cut(b, "/")
	x, _ := strconv.Atoi(na)
	y, _ := strconv.Atoi(nb)
	return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(x, y), cmp.Compare(a, b))
}

// portDifferences says how the programmed port differs from the desired one.
func (v meshView) portDifferences(p portPair) []meshDifference {
	d := meshDifference{Kind: "port", Key: p.Key}
	if p.Want != nil {
		d.Of = p.Want.Name
	} else {
		d.Of = v.serviceName(p.Have.GetServiceId())
	}
	var details []string
	switch {
	case p.Have == nil:
		details = append(details, fmt.Sprintf("missing; want %s, backends %s", p.Want.Mode, formatList(wantPortBackends(p.Want))))
	case p.Want == nil:
		details = append(details, fmt.Sprintf("not wanted; kernel has %s, backends %s", p.Have.GetMode(), formatList(havePortBackends(p.Have))))
	default:
		if p.Have.GetServiceId() != p.Want.Service {
			details = append(details, fmt.Sprintf("want service %s, kernel has service %s",
				v.serviceName(p.Want.Service), v.serviceName(p.Have.GetServiceId())))
		}
		if p.Have.GetMode() != p.Want.Mode.String() {
			details = append(details, fmt.Sprintf("want mode %s, kernel has %s", p.Want.Mode, orNone(p.Have.GetMode())))
		}
		if want, have := wantPortBackends(p.Want), havePortBackends(p.Have); !slices.Equal(want, have) {
			details = append(details, fmt.Sprintf("want backends %s, kernel has %s", formatList(want), formatList(have)))
		}
	}
	return withDetails(d, details)
}

func wantPortBackends(w *mesh.Port) []string {
	out := make([]string, 0, len(w.Backends))
	for _, b := range w.Backends {
		out = append(out, b.String())
	}
	return sortedAddrs(out)
}

func havePortBackends(h *api.PortKernelState) []string {
	out := make([]string, 0, len(h.GetBackends()))
	for _, b := range h.GetBackends() {
		if ap, err := netip.ParseAddrPort(b); err == nil {
			b = ap.String()
		}
		out = append(out, b)
	}
	return sortedAddrs(out)
}

// servedNetworks are the networks whose DNS records a check compares: those the node has an
// overlay device for (its bridge is there, so containers of the network may run and ask) and
// those its DNS server listens for (a listener on the network's gateway). The server keeps a
// zone for every network its agent knows, but only these zones are reachable by a container:
// the others are answered to no one, and comparing them would report names no query can get
// while hiding nothing a container sees. A network with a device but no listener is reported
// by diffDNS as a missing listener.
func (v meshView) servedNetworks() (served []string, listened map[netip.Addr]bool) {
	set := map[string]bool{}
	for _, o := range v.resp.GetOverlay() {
		set[o.GetNetworkId()] = true
	}
	listened = map[netip.Addr]bool{}
	for _, l := range v.resp.GetKernel().GetDnsListening() {
		if ap, err := netip.ParseAddrPort(l); err == nil {
			listened[ap.Addr()] = true
		}
	}
	for id, n := range v.networks {
		if gw := dataplane.DNSAddr(n); gw.IsValid() && listened[gw] {
			set[id] = true
		}
	}
	served = slices.SortedFunc(maps.Keys(set), func(a, b string) int {
		return cmp.Or(cmp.Compare(v.networkName(a), v.networkName(b)), cmp.Compare(a, b))
	})
	return served, listened
}

// diffDNS compares the DNS listeners and records of the served networks.
func (v meshView) diffDNS() []meshDifference {
	served, listened := v.servedNetworks()
	var diffs []meshDifference

	// Listeners: one on the gateway of every network with a device here; none elsewhere.
	gateways := map[netip.Addr]bool{}
	for _, n := range v.networks {
		if gw := dataplane.DNSAddr(n); gw.IsValid() {
			gateways[gw] = true
		}
	}
	for _, o := range v.overlayStates() {
		n := v.networks[o.GetNetworkId()]
		if gw := dataplane.DNSAddr(n); n != nil && gw.IsValid() && !listened[gw] {
			diffs = append(diffs, meshDifference{Kind: "dns listener", Key: gw.String(), Of: networkName(n),
				Detail: "missing; the network's bridge is on the node and its containers ask its gateway"})
		}
	}
	for _, l := range v.resp.GetKernel().GetDnsListening() {
		if ap, err := netip.ParseAddrPort(l); err != nil || !gateways[ap.Addr()] {
			diffs = append(diffs, meshDifference{Kind: "dns listener", Key: l, Detail: "not wanted; no network has this gateway"})
		}
	}

	// Records of the served networks, name by name.
	want := v.desiredRecords(served)
	have := map[string]map[string][]string{}
	for _, r := range v.resp.GetKernel().GetDnsRecords() {
		if have[r.GetNetworkId()] == nil {
			have[r.GetNetworkId()] = map[string][]string{}
		}
		addrs := make([]string, 0, len(r.GetAddrs()))
		for _, a := range r.GetAddrs() {
			addrs = append(addrs, normalAddr(a))
		}
		have[r.GetNetworkId()][strings.ToLower(r.GetName())] = sortedAddrs(addrs)
	}
	for _, id := range served {
		wantNames := map[string][]string{}
		for name, addrs := range want[id] {
			list := make([]string, 0, len(addrs))
			for _, a := range addrs {
				list = append(list, a.String())
			}
			wantNames[name] = sortedAddrs(list)
		}
		haveNames := have[id]
		for _, name := range slices.Sorted(maps.Keys(union(wantNames, haveNames))) {
			w, inWant := wantNames[name]
			h, inHave := haveNames[name]
			d := meshDifference{Kind: "dns", Key: name, Of: v.networkName(id)}
			switch {
			case !inHave:
				d.Detail = "missing; want " + formatList(w)
			case !inWant:
				d.Detail = "not wanted; the server answers " + formatList(h)
			case !slices.Equal(w, h):
				d.Detail = fmt.Sprintf("want %s, the server answers %s", formatList(w), formatList(h))
			default:
				continue
			}
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// diffOverlay compares every overlay device the node has with what its network's endpoints
// want (overlay_diff.go's rules, as `overlay inspect` shows them), and reports the devices that
// are missing: on a network the node runs a task of, or one an ingress port needs reaching.
func (v meshView) diffOverlay() []meshDifference {
	byNetwork := map[string][]*api.Endpoint{}
	wanted := map[string]string{} // network ID → why the node needs its device
	vtep := nodeVTEP(v.resp.GetNode())
	for _, ep := range v.resp.GetEndpoints() {
		byNetwork[ep.GetNetworkId()] = append(byNetwork[ep.GetNetworkId()], ep)
		if ep.GetVtep() == vtep {
			wanted[ep.GetNetworkId()] = "the node runs a task of the network"
		}
	}
	for _, id := range dataplane.IngressNetworks(v.resp.GetServices()) {
		if _, ok := wanted[id]; !ok {
			wanted[id] = "an ingress port balances over the network's tasks"
		}
	}

	var diffs []meshDifference
	have := map[string]bool{}
	for _, k := range v.overlayStates() {
		id := k.GetNetworkId()
		have[id] = true
		n := v.networks[id]
		if n == nil {
			diffs = append(diffs, meshDifference{Kind: "overlay device", Key: k.GetDevice(), Of: v.networkName(id),
				Detail: "not wanted; the cluster has no such network"})
			continue
		}
		ov := compareOverlay(&api.InspectOverlayResponse{Network: n, Node: v.resp.GetNode(), Endpoints: byNetwork[id], Kernel: k})
		for _, p := range ov.Problems {
			diffs = append(diffs, meshDifference{Kind: "overlay device", Key: ov.Device, Of: ov.Network, Detail: p})
		}
		for _, e := range ov.FDB {
			diffs = appendEntryDifference(diffs, "overlay fdb", ov.Network, e)
		}
		for _, e := range ov.Neighbours {
			diffs = appendEntryDifference(diffs, "overlay neighbour", ov.Network, e)
		}
		for _, e := range ov.BridgeFDB {
			diffs = appendEntryDifference(diffs, "overlay bridge fdb", ov.Network, e)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(wanted)) {
		if n := v.networks[id]; n != nil && !have[id] {
			diffs = append(diffs, meshDifference{Kind: "overlay device", Key: deviceOf(id), Of: networkName(n),
				Detail: "missing; " + wanted[id]})
		}
	}
	return diffs
}

// overlayStates are the node's overlay devices sorted by network name.
func (v meshView) overlayStates() []*api.OverlayKernelState {
	states := slices.Clone(v.resp.GetOverlay())
	slices.SortFunc(states, func(a, b *api.OverlayKernelState) int {
		return cmp.Or(cmp.Compare(v.networkName(a.GetNetworkId()), v.networkName(b.GetNetworkId())),
			cmp.Compare(a.GetNetworkId(), b.GetNetworkId()))
	})
	return states
}

// appendEntryDifference appends overlay entry e's difference, if it is not ok.
func appendEntryDifference(diffs []meshDifference, kind, network string, e overlayEntry) []meshDifference {
	d := meshDifference{Kind: kind, Key: e.Key, Of: network}
	switch e.Status {
	case statusOK:
		return diffs
	case statusMissing:
		d.Detail = "missing; want " + e.Desired
	case statusExtra:
		d.Detail = "not wanted; kernel has " + e.Programmed
	default:
		d.Detail = fmt.Sprintf("want %s, kernel has %s", e.Desired, e.Programmed)
		if e.Detail != "" {
			d.Detail += " (" + e.Detail + ")"
		}
	}
	return append(diffs, d)
}

// withDetails is d once per detail.
func withDetails(d meshDifference, details []string) []meshDifference {
	out := make([]meshDifference, 0, len(details))
	for _, detail := range details {
		d.Detail = detail
		out = append(out, d)
	}
	return out
}

// formatList writes a list as "[a b]".
func formatList(list []string) string { return "[" + strings.Join(list, " ") + "]" }

// normalAddr is a in netip's spelling, a itself if it is no address.
func normalAddr(a string) string {
	if addr, err := netip.ParseAddr(a); err == nil {
		return addr.String()
	}
	return a
}

// sortedAddrs sorts list (addresses, or address:port pairs) in address order.
func sortedAddrs(list []string) []string {
	slices.SortFunc(list, compareAddrPorts)
	return list
}

// compareAddrPorts orders addresses and "address:port" pairs numerically, anything else as text.
func compareAddrPorts(a, b string) int {
	x, errx := netip.ParseAddrPort(a)
	y, erry := netip.ParseAddrPort(b)
	if errx == nil && erry == nil {
		return x.Compare(y)
	}
	return compareAddrs(a, b)
}

func union[V any](a, b map[string]V) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
