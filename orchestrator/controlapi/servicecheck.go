package controlapi

// This file owns the checks of a valid service spec against the cluster it
// is written to: its name is free, its networks exist, constraints that
// pin a node name one that exists, its published ports clash with no
// other service's, and the addresses it pins are its networks' to give
// and no other binding's or service's (checkPins). They run inside the
// write's transaction, on the state it read; that state may be older than
// the one the write commits over, so the name and port checks, which keep
// invariants across services, and the network check, which a network's
// removal could otherwise race, run once more in the store as the write
// applies (CheckServiceConflicts). servicespec.go checks the spec on its
// own; networks.go finds the networks a spec's attachments name
// (resolveNetworkTargets), before these checks run.
//
// Pins are checked only in the write's transaction, not again as it
// applies: a binding the allocator writes between the read and the commit
// is not seen, so the allocator must never give an address a spec pins to
// another key; the pinned slot waits instead.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
	"github.com/shoal/shoal/orchestrator/scheduler"
	"github.com/shoal/shoal/orchestrator/store"
)

// checkSpecInCluster returns nil or the *FieldError refusing svc, about to
// be written, in the state tx reads. cur is svc as stored (nil for a new
// service): a service conflicts with nothing of its own, and only what the
// write adds is checked, so a service whose pinned node left, or which an
// older manager let clash, can still be scaled, changed or removed.
func checkSpecInCluster(tx store.ReadTx, svc, cur *api.Service) error {
	if err := checkConflicts(tx, svc, cur); err != nil {
		return err
	}
	if err := checkNetworksExist(tx, svc.Spec, cur.GetSpec()); err != nil {
		return err
	}
	if err := checkPins(tx, svc, cur); err != nil {
		return err
	}
	return checkConstraintNodesExist(tx, svc.Spec, cur.GetSpec())
}

// CheckServiceConflicts is the store check (see store.CheckOf) that keeps
// a service's name and published ports its own. The Control API's check
// inside a write's transaction reads a state that may have changed by the
// time the write commits (another client's write landed first, or this
// manager lagged the leader), and two such writes touch different objects,
// so no version check catches them. The manager gives this check to
// store.New, so every manager runs it on every entry, replayed ones
// included, and refuses the same ones; the client gets the *FieldError
// the Control API's own check would have given.
//
// It also refuses an attachment, new to svc, to a network that is not
// there (removed after the write read it). That rule came after
// ChecksVersion 1 without a bump: until it came every service spec with a
// network attachment was refused, so no entry it could judge differently
// was ever written.
func CheckServiceConflicts(after store.ReadTx, old, svc *api.Service) error {
	if err := checkConflicts(after, svc, old); err != nil {
		return err
	}
	return checkNetworksExist(after, svc.GetSpec(), old.GetSpec())
}

// checkConflicts refuses svc when it takes a name or a published port
// another service in the state tx reads holds. Only what the write takes
// anew is checked: what cur, svc as stored (nil for a new service),
// already held stays its own.
func checkConflicts(tx store.ReadTx, svc, cur *api.Service) error {
	newName := cur == nil || !strings.EqualFold(serviceName(cur), serviceName(svc))
	held := publishedPorts(cur.GetSpec())
	if !newName && allHeld(svc.GetSpec(), held) {
		return nil // the common update: no need to read every service
	}
	var others []*api.Service
	for _, s := range tx.Services() {
		if s.Id != svc.Id {
			others = append(others, s)
		}
	}
	if newName {
		if err := checkNameFree(others, svc.GetSpec()); err != nil {
			return err
		}
	}
	return checkPortsFree(others, svc.GetSpec(), held)
}

// publishedPorts is the set of ports spec publishes, each as its name and
// mode: "8080/tcp PUBLISH_MODE_INGRESS".
func publishedPorts(spec *api.ServiceSpec) map[string]bool {
	out := make(map[string]bool)
	for _, p := range spec.GetEndpoint().GetPorts() {
		if p.PublishedPort != 0 {
			out[publishedPortKey(p)] = true
		}
	}
	return out
}

func publishedPortKey(p *api.PortConfig) string { return portName(p) + " " + p.PublishMode.String() }

// allHeld reports whether every port spec publishes is in held.
func allHeld(spec *api.ServiceSpec, held map[string]bool) bool {
	for _, p := range spec.GetEndpoint().GetPorts() {
		if p.PublishedPort != 0 && !held[publishedPortKey(p)] {
			return false
		}
	}
	return true
}

// checkNameFree refuses a name another service holds; names compare
// without regard to case, as lookups by name do.
func checkNameFree(others []*api.Service, spec *api.ServiceSpec) error {
	name := spec.GetAnnotations().GetName()
	for _, s := range others {
		if strings.EqualFold(s.GetSpec().GetAnnotations().GetName(), name) {
			return &FieldError{
				Field:  "spec.annotations.name",
				Reason: fmt.Sprintf("a service named %q already exists (%s)", s.GetSpec().GetAnnotations().GetName(), s.Id),
				Code:   codes.AlreadyExists,
			}
		}
	}
	return nil
}

// checkConstraintNodesExist refuses a node.id==X or node.hostname==X
// constraint that no node satisfies: such a service could never run. Only
// constraints prev (the spec being replaced, nil for a new service) did
// not have are checked: the node an unchanged one names may have left
// since, and refusing it would lock the service.
func checkConstraintNodesExist(tx store.ReadTx, spec, prev *api.ServiceSpec) error {
	exprs := spec.GetTask().GetPlacement().GetConstraints()
	cs, err := scheduler.ParseConstraints(exprs)
	if err != nil {
		// Only a rollback gets here: the spec it returns to was checked
		// by the rules of its day. Refuse it as a new spec is refused.
		return validatePlacement("spec.task.placement", spec.GetTask().GetPlacement())
	}
	had := make(map[string]bool)
	if old, err := scheduler.ParseConstraints(prev.GetTask().GetPlacement().GetConstraints()); err == nil {
		for _, c := range old {
			had[constraintKey(c)] = true
		}
	}
	var nodes []*api.Node
	for i, c := range cs {
		if !c.NamesNode() || had[constraintKey(c)] {
			continue
		}
		if nodes == nil {
			nodes = tx.Nodes()
		}
		if !slices.ContainsFunc(nodes, c.Match) {
			return invalid(fmt.Sprintf("spec.task.placement.constraints[%d]", i),
				"constraint %q: unknown node: no node has %s %s", exprs[i], strings.TrimPrefix(strings.ToLower(c.Key), "node."), c.Value)
		}
	}
	return nil
}

// constraintKey names what a constraint asks, however it was written:
// the scheduler trims it and compares attributes and values without
// regard to case.
func constraintKey(c scheduler.Constraint) string {
	return strings.ToLower(c.String())
}

// checkPortsFree refuses a published port (number and protocol) that
// clashes with another service's. An ingress-mode port is open on every
// node, so it clashes with the port published by any other service, in
// either mode. A host-mode port is open only on the nodes running the
// service's tasks: services may share one (the scheduler keeps their tasks
// apart), but not with a service publishing it in ingress mode.
// Ports in held, which the service published already in the same mode,
// are not checked.
func checkPortsFree(others []*api.Service, spec *api.ServiceSpec, held map[string]bool) error {
	ports := spec.GetEndpoint().GetPorts()
	if len(ports) == 0 {
		return nil
	}
	ingressBy := make(map[string]string) // port name → service name
	hostBy := make(map[string]string)
	for _, s := range others {
		for _, p := range s.GetSpec().GetEndpoint().GetPorts() {
			switch {
			case p.PublishedPort == 0:
			case p.PublishMode == api.PortConfig_PUBLISH_MODE_HOST:
				hostBy[portName(p)] = serviceName(s)
			default:
				ingressBy[portName(p)] = serviceName(s)
			}
		}
	}
	for i, p := range ports {
		if p.PublishedPort == 0 || held[publishedPortKey(p)] {
			continue
		}
		field, name := fmt.Sprintf("spec.endpoint.ports[%d]", i), portName(p)
		host := p.PublishMode == api.PortConfig_PUBLISH_MODE_HOST
		if other, taken := ingressBy[name]; taken {
			if host {
				return invalid(field, "port %s is already published by service %s in ingress mode, which takes it on every node", name, other)
			}
			return invalid(field, "port %s is already published by service %s", name, other)
		}
		if other, taken := hostBy[name]; taken && !host {
			return invalid(field, "port %s is already published by service %s in host mode; an ingress port needs it free on every node", name, other)
		}
	}
	return nil
}

// checkPins refuses an address svc pins (ips, or ip_range for the slots
// up to the replicas) that its network cannot give: outside every subnet,
// its network or broadcast address, or a gateway; an ip_range not inside
// one subnet; and an address the write pins anew (cur, svc as stored, nil
// for a new service, did not pin it to that slot) that another key's
// binding holds or another service's spec pins. A binding of the same
// (service, network, slot) holding it is the slot's own. The state is
// the transaction's, so nothing is written when a pin is refused.
func checkPins(tx store.ReadTx, svc, cur *api.Service) error {
	var others []*api.Service // read once, when a pin is new
	for i, a := range svc.GetSpec().GetTask().GetNetworks() {
		field := fmt.Sprintf("spec.task.networks[%d]", i)
		pins, err := attachmentPins(field, svc.Spec, a)
		if err != nil {
			return err
		}
		nw := tx.Network(a.Target)
		if nw == nil || (len(pins) == 0 && a.IpRange == "") {
			continue // no network: checkNetworksExist refused what is new
		}
		pools := networkPools(nw)
		if err := checkRangeInSubnet(field+".ip_range", nw, pools, a.IpRange); err != nil {
			return err
		}
		for _, p := range pins {
			if err := checkPinAssignable(field, nw, pools, p); err != nil {
				return err
			}
		}
		fresh := pinsNewTo(pins, cur.GetSpec(), a.Target)
		for _, p := range fresh {
			if err := checkPinNotHeld(tx, field, svc.Id, nw, p); err != nil {
				return err
			}
		}
		if len(fresh) == 0 {
			continue
		}
		if others == nil {
			others = slices.DeleteFunc(tx.Services(), func(o *api.Service) bool { return o.Id == svc.Id })
		}
		if err := checkPinsNotPinned(field, nw, others, fresh); err != nil {
			return err
		}
	}
	return nil
}

// networkPools builds the pools of nw's subnets as the allocator builds
// them, in the order of its spec; a subnet that does not build (never
// stored: networks are validated when created) is left out.
func networkPools(nw *api.Network) []*ipam.Pool {
	var pools []*ipam.Pool
	for _, c := range nw.GetSpec().GetIpam() {
		if pool, err := ipamPool("", c); err == nil {
			pools = append(pools, pool)
		}
	}
	return pools
}

// subnetList names pools' subnets for a refusal: "10.20.0.0/24, fd00::/64".
func subnetList(pools []*ipam.Pool) string {
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.Config().Subnet.String()
	}
	return strings.Join(names, ", ")
}

// checkRangeInSubnet refuses an ip_range (spec, parsed already) whose
// first and last addresses are not in one subnet of nw.
func checkRangeInSubnet(field string, nw *api.Network, pools []*ipam.Pool, spec string) error {
	if spec == "" {
		return nil
	}
	r, err := ipam.ParseRange(spec)
	if err != nil {
		return ipamFieldError(field, err)
	}
	for _, p := range pools {
		if p.Contains(r.First) && p.Contains(r.Last) {
			return nil
		}
	}
	return invalid(field, "%s is not inside a subnet of network %s (%s)", spec, networkName(nw), subnetList(pools))
}

// checkPinAssignable refuses a pin the network cannot give, by the ipam
// rules the allocator pins with: an address of no subnet, a subnet's
// network or broadcast address, or its gateway. Reserved (aux) addresses
// may be pinned.
func checkPinAssignable(field string, nw *api.Network, pools []*ipam.Pool, p slotPin) error {
	for _, pool := range pools {
		st := pool.Status(p.addr)
		if st == ipam.StatusOutside {
			continue
		}
		what := ""
		switch st {
		case ipam.StatusNetwork:
			what = "the network address"
			if p.addr.Is6() {
				what = "the subnet-router anycast address"
			}
		case ipam.StatusBroadcast:
			what = "the broadcast address"
		case ipam.StatusGateway:
			what = "the gateway"
		default:
			return nil
		}
		return invalid(p.field(field), "%s is %s of network %s's subnet %s, which no task may have",
			p, what, networkName(nw), pool.Config().Subnet)
	}
	return invalid(p.field(field), "%s is in no subnet of network %s (%s)", p, networkName(nw), subnetList(pools))
}

// pinsNewTo returns the pins prev (the spec being replaced, nil for a new
// service) did not make on the network target: the slot had no pin there,
// or another address.
func pinsNewTo(pins []slotPin, prev *api.ServiceSpec, target string) []slotPin {
	i := slices.IndexFunc(prev.GetTask().GetNetworks(), func(a *api.NetworkAttachmentConfig) bool { return a.Target == target })
	if i < 0 {
		return pins
	}
	// A previous spec that old rules let through makes no pins here.
	old, _ := attachmentPins("", prev, prev.Task.Networks[i])
	// Both are sorted by slot: walk them side by side.
	var fresh []slotPin
	j := 0
	for _, p := range pins {
		for j < len(old) && old[j].slot < p.slot {
			j++
		}
		if j == len(old) || old[j].slot != p.slot || old[j].addr != p.addr {
			fresh = append(fresh, p)
		}
	}
	return fresh
}

// checkPinNotHeld refuses a pin whose address a binding on nw holds for
// another key than (service, nw, slot).
func checkPinNotHeld(tx store.ReadTx, field, serviceID string, nw *api.Network, p slotPin) error {
	for _, b := range tx.BindingsByAddress(nw.Id, p.addr.String()) {
		if b.ServiceId == serviceID && b.Kind == api.IPBinding_KIND_SLOT && b.Slot == p.slot {
			continue
		}
		return invalid(p.field(field), "%s on network %s is held by %s", p, networkName(nw), bindingHolder(b))
	}
	return nil
}

// bindingHolder names a binding's key, with what frees it when that is
// only a matter of time or of a release.
func bindingHolder(b *api.IPBinding) string {
	var who string
	switch b.Kind {
	case api.IPBinding_KIND_NODE:
		who = fmt.Sprintf("service %s on node %s", b.ServiceName, b.NodeId)
	case api.IPBinding_KIND_VIP:
		who = fmt.Sprintf("service %s as its virtual IP", b.ServiceName)
	default:
		who = fmt.Sprintf("service %s slot %d", b.ServiceName, b.Slot)
	}
	switch {
	case b.ReleaseRequested:
		who += " (released: it is free once no task uses it and its cooldown passed)"
	case b.HeldSince != nil && b.Kind == api.IPBinding_KIND_SLOT:
		who += fmt.Sprintf(" (kept since a scale-down; netctl ip release %s %d frees it)", b.ServiceName, b.Slot)
	}
	return who
}

// checkPinsNotPinned refuses a pin of fresh whose address one of others
// pins on nw too: the address is that service's slot's, even before its
// binding exists. Of several, the one of the lowest slot is refused.
func checkPinsNotPinned(field string, nw *api.Network, others []*api.Service, fresh []slotPin) error {
	index := make(map[netip.Addr]int, len(fresh)) // address → index in fresh
	for i, p := range fresh {
		index[p.addr] = i
	}
	first, owner, ownerSlot := len(fresh), "", uint64(0)
	for _, o := range others {
		for _, a := range o.GetSpec().GetTask().GetNetworks() {
			if a.Target != nw.Id {
				continue
			}
			pins, _ := attachmentPins("", o.Spec, a) // what old rules let through pins nothing
			for _, op := range pins {
				if i, hit := index[op.addr]; hit && i < first {
					first, owner, ownerSlot = i, serviceName(o), op.slot
				}
			}
		}
	}
	if first == len(fresh) {
		return nil
	}
	p := fresh[first]
	return invalid(p.field(field), "%s on network %s is pinned by service %s to its slot %d", p, networkName(nw), owner, ownerSlot)
}
