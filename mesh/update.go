package mesh

// This file owns Index: the State a Balancer applied, kept by key so that an Update is checked
// against it and applied in time that follows the size of the Update, not of the State. The
// checks are State.Validate's (the per-object ones are shared with it) plus the Update's own:
// no key twice within it, and no VIP or port taken from another service without removing it.

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Index is a valid State by key: its VIPs by address, its ports by key, and how many of its VIPs
// list each backend address. Backends use one to check and apply Updates; it is not safe for
// concurrent use.
type Index struct {
	vips  map[netip.Addr]VIP
	ports map[PortKey]Port
	// backends counts, for each address, the VIPs that list it as a backend: a VIP address an
	// Update adds must count none once the Update is applied.
	backends map[netip.Addr]int
	snat     netip.Addr
}

// NewIndex indexes s, which must be valid (State.Validate accepts it), in time proportional to
// its size. The Index keeps its own copies of the backend lists.
func NewIndex(s State) *Index {
	x := &Index{
		vips:     make(map[netip.Addr]VIP, len(s.VIPs)),
		ports:    make(map[PortKey]Port, len(s.Ports)),
		backends: make(map[netip.Addr]int, len(s.VIPs)),
		snat:     s.SNAT,
	}
	for _, v := range s.VIPs {
		x.putVIP(v)
	}
	for _, p := range s.Ports {
		x.putPort(p)
	}
	return x
}

// State returns the indexed State: VIPs by address, ports by protocol and published port,
// backends in order; the slices are the caller's.
func (x *Index) State() State {
	s := State{SNAT: x.snat}
	for _, a := range slices.SortedFunc(maps.Keys(x.vips), netip.Addr.Compare) {
		v := x.vips[a]
		v.Backends = slices.Clone(v.Backends)
		slices.SortFunc(v.Backends, netip.Addr.Compare)
		s.VIPs = append(s.VIPs, v)
	}
	for _, k := range slices.SortedFunc(maps.Keys(x.ports), comparePortKeys) {
		p := x.ports[k]
		p.Backends = slices.Clone(p.Backends)
		slices.SortFunc(p.Backends, compareBackends)
		s.Ports = append(s.Ports, p)
	}
	return s
}

// SetSNAT records a new SNAT address after a Sync that changed it; the Sync's State was
// validated, so every ingress port still has one.
func (x *Index) SetSNAT(a netip.Addr) { x.snat = a }

// Check reports whether the State after u would be valid, with the rules of State.Validate, and
// whether u takes no VIP or port from another service without removing it first. The error is a
// *FieldError naming the first field of u refused ("VIPs[0].Backends[2]", "RemovedVIPs[1]").
// Check changes nothing. Its time follows the size of u and of the VIPs u replaces or removes;
// only a refusal because an untouched VIP lists u's VIP address as a backend looks through the
// whole State, to name that VIP.
func (x *Index) Check(u Update) error {
	removedVIPs, err := checkRemovedVIPs(u.RemovedVIPs)
	if err != nil {
		return err
	}
	added, err := x.checkVIPs(u.VIPs, removedVIPs)
	if err != nil {
		return err
	}
	if err := x.checkOverlaps(u.VIPs, added, removedVIPs); err != nil {
		return err
	}
	removedPorts, err := checkRemovedPorts(u.RemovedPorts)
	if err != nil {
		return err
	}
	return x.checkPorts(u.Ports, removedPorts)
}

// Apply makes x the State after u, which Check accepted: removals first, then the VIPs and ports
// u adds or replaces.
func (x *Index) Apply(u Update) {
	for _, a := range u.RemovedVIPs {
		x.removeVIP(a)
	}
	for _, k := range u.RemovedPorts {
		delete(x.ports, k)
	}
	for _, v := range u.VIPs {
		x.removeVIP(v.Addr)
		x.putVIP(v)
	}
	for _, p := range u.Ports {
		x.putPort(p)
	}
}

func (x *Index) putVIP(v VIP) {
	v.Backends = slices.Clone(v.Backends)
	x.vips[v.Addr] = v
	for _, b := range v.Backends {
		x.backends[b]++
	}
}

func (x *Index) removeVIP(a netip.Addr) {
	v, ok := x.vips[a]
	if !ok {
		return
	}
	delete(x.vips, a)
	for _, b := range v.Backends {
		if x.backends[b]--; x.backends[b] == 0 {
			delete(x.backends, b)
		}
	}
}

func (x *Index) putPort(p Port) {
	p.Backends = slices.Clone(p.Backends)
	x.ports[p.PortKey()] = p
}

// checkRemovedVIPs refuses a removed address that cannot be a VIP, or one removed twice; it
// returns the removed addresses with their indexes.
func checkRemovedVIPs(removed []netip.Addr) (map[netip.Addr]int, error) {
	out := make(map[netip.Addr]int, len(removed))
	for i, a := range removed {
		if why := unicastProblem(a); why != "" {
			return nil, invalid(fmt.Sprintf("RemovedVIPs[%d]", i), "%s", why)
		}
		if j, dup := out[a]; dup {
			return nil, invalid(fmt.Sprintf("RemovedVIPs[%d]", i), "%s is also RemovedVIPs[%d]", a, j)
		}
		out[a] = i
	}
	return out, nil
}

// checkRemovedPorts refuses a removed key that cannot be a port's, or one removed twice; it
// returns the removed keys with their indexes.
func checkRemovedPorts(removed []PortKey) (map[PortKey]int, error) {
	out := make(map[PortKey]int, len(removed))
	for i, k := range removed {
		field := func(sub string) string { return fmt.Sprintf("RemovedPorts[%d]%s", i, sub) }
		if k.Protocol != TCP && k.Protocol != UDP {
			return nil, invalid(field(".Protocol"), "%s is not tcp or udp", k.Protocol)
		}
		if k.Published == 0 {
			return nil, invalid(field(".Published"), "port 0")
		}
		if j, dup := out[k]; dup {
			return nil, invalid(field(""), "%s is also RemovedPorts[%d]", k, j)
		}
		out[k] = i
	}
	return out, nil
}

// checkVIPs checks each VIP of an Update on its own, that no address comes twice, and that no
// address is another service's VIP that the Update keeps. It returns the addresses with their
// indexes.
func (x *Index) checkVIPs(vips []VIP, removed map[netip.Addr]int) (map[netip.Addr]int, error) {
	added := make(map[netip.Addr]int, len(vips))
	for i := range vips {
		v := &vips[i]
		if err := validateVIP(i, v); err != nil {
			return nil, err
		}
		if j, dup := added[v.Addr]; dup {
			return nil, invalid(fmt.Sprintf("VIPs[%d].Addr", i), "%s is also VIPs[%d]", v.Addr, j)
		}
		added[v.Addr] = i
		if old, ok := x.vips[v.Addr]; ok && old.Service != v.Service {
			if _, gone := removed[v.Addr]; !gone {
				return nil, invalid(fmt.Sprintf("VIPs[%d].Addr", i),
					"%s is the VIP of %s; remove it in the same Update to give it to service %s",
					v.Addr, serviceOf(old.Service, old.Name), v.Service)
			}
		}
	}
	return added, nil
}

// checkOverlaps refuses, in the State after the Update, a backend that is a VIP and a VIP
// address that is a backend. The backend counts of the Index are corrected by the VIPs the
// Update replaces or removes and by the VIPs it adds, so only those VIPs are looked at.
func (x *Index) checkOverlaps(vips []VIP, added, removed map[netip.Addr]int) error {
	for i, v := range vips {
		for j, b := range v.Backends {
			field := fmt.Sprintf("VIPs[%d].Backends[%d]", i, j)
			if k, ok := added[b]; ok {
				return invalid(field, "%s is the VIP of VIPs[%d]", b, k)
			}
			if old, ok := x.vips[b]; ok {
				if _, gone := removed[b]; !gone {
					return invalid(field, "%s is the VIP of %s", b, serviceOf(old.Service, old.Name))
				}
			}
		}
	}
	// No backend of the Update is a VIP now: a VIP address of the Update that still counts as a
	// backend is listed by a VIP the Update leaves alone.
	delta := map[netip.Addr]int{}
	forget := func(a netip.Addr) {
		for _, b := range x.vips[a].Backends {
			delta[b]--
		}
	}
	for a := range removed {
		forget(a)
	}
	for a := range added {
		if _, done := removed[a]; !done {
			forget(a)
		}
	}
	for _, v := range vips {
		for _, b := range v.Backends {
			delta[b]++
		}
	}
	for i, v := range vips {
		if x.backends[v.Addr]+delta[v.Addr] > 0 {
			holder := x.vipListing(v.Addr, added, removed)
			return invalid(fmt.Sprintf("VIPs[%d].Addr", i), "%s is a backend of the VIP %s of %s",
				v.Addr, holder.Addr, serviceOf(holder.Service, holder.Name))
		}
	}
	return nil
}

// vipListing returns the VIP, neither added nor removed by the Update, that lists backend. It
// looks through the whole State: it only runs to explain a refusal.
func (x *Index) vipListing(backend netip.Addr, added, removed map[netip.Addr]int) VIP {
	for _, a := range slices.SortedFunc(maps.Keys(x.vips), netip.Addr.Compare) {
		_, replaced := added[a]
		_, gone := removed[a]
		if v := x.vips[a]; !replaced && !gone && slices.Contains(v.Backends, backend) {
			return v
		}
	}
	return VIP{Addr: backend} // not reached while the counts are right
}

// checkPorts checks each port of an Update on its own, that no key comes twice, that no key is
// another service's port that the Update keeps, and that an ingress port has the SNAT address
// it needs.
func (x *Index) checkPorts(ports []Port, removed map[PortKey]int) error {
	keys := make(map[PortKey]int, len(ports))
	for i := range ports {
		p := &ports[i]
		if err := validatePort(i, p); err != nil {
			return err
		}
		k := p.PortKey()
		if j, dup := keys[k]; dup {
			return invalid(fmt.Sprintf("Ports[%d]", i), "%s is also published by Ports[%d]", k, j)
		}
		keys[k] = i
		if old, ok := x.ports[k]; ok && old.Service != p.Service {
			if _, gone := removed[k]; !gone {
				return invalid(fmt.Sprintf("Ports[%d]", i),
					"%s is published by %s; remove it in the same Update to give it to service %s",
					k, serviceOf(old.Service, old.Name), p.Service)
			}
		}
		if p.Mode == Ingress && !x.snat.IsValid() {
			return invalid(fmt.Sprintf("Ports[%d].Mode", i),
				"ingress needs the State's SNAT address and the applied State has none (a new SNAT takes a Sync)")
		}
	}
	return nil
}

// serviceOf names a service for people: "service svc1 (web)".
func serviceOf(id, name string) string {
	if name == "" {
		return "service " + id
	}
	return "service " + id + " (" + name + ")"
}

func comparePortKeys(a, b PortKey) int {
	return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Published, b.Published))
}

func compareBackends(a, b Backend) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
}
