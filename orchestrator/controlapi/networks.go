package controlapi

// This file owns the network RPCs (create, get, list, remove), the VNI a
// network gets, the checks of a network against the others (a name, the
// subnets and the VNI held once, here and again in the store as the write
// applies: CheckNetworkConflicts), and how a service's network attachments
// find their networks. networkspec.go checks a spec on its own.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// The VNIs the cluster hands out. VNIs below MinVNI are left to the
// operator's other VXLAN uses on the same hosts; 2^24-1 is the largest a
// VXLAN header holds.
const (
	MinVNI = 4096
	MaxVNI = 1<<24 - 1
)

// CreateNetwork validates a spec, gives the network the lowest free VNI
// and writes it.
func (s *Server) CreateNetwork(ctx context.Context, req *api.CreateNetworkRequest) (*api.CreateNetworkResponse, error) {
	spec, err := normalizeNetworkSpec(req.GetSpec())
	if err != nil {
		return nil, err
	}
	id := api.NewID()
	var nw *api.Network
	// A create racing another may read the VNI the other takes; the store
	// refuses the second as a version conflict (see CheckNetworkConflicts)
	// and Update runs this again on the newer state, with the next VNI.
	err = s.update(ctx, func(tx store.Tx) error {
		vni, err := freeVNI(tx.Networks())
		if err != nil {
			return err
		}
		nw = &api.Network{Id: id, Spec: spec, Vni: vni}
		if err := checkNetworkConflicts(tx, nil, nw); err != nil {
			return err
		}
		return tx.Create(nw)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.store.View(func(tx store.ReadTx) {
		if committed := tx.Network(id); committed != nil {
			nw = committed
		}
	})
	s.log.Info("network created", "network", nw.Id, "name", networkName(nw), "vni", nw.Vni)
	return &api.CreateNetworkResponse{Network: nw}, nil
}

// GetNetwork returns one network.
func (s *Server) GetNetwork(ctx context.Context, req *api.GetNetworkRequest) (*api.GetNetworkResponse, error) {
	nw, err := s.resolveNetwork(ctx, req.GetNetworkId())
	if err != nil {
		return nil, err
	}
	return &api.GetNetworkResponse{Network: nw}, nil
}

// ListNetworks returns every network, sorted by name.
func (s *Server) ListNetworks(ctx context.Context, _ *api.ListNetworksRequest) (*api.ListNetworksResponse, error) {
	var nws []*api.Network
	if err := s.store.ViewLinearizable(ctx, func(tx store.ReadTx) { nws = tx.Networks() }); err != nil {
		return nil, toStatus(err)
	}
	sort.Slice(nws, func(i, j int) bool { return networkName(nws[i]) < networkName(nws[j]) })
	return &api.ListNetworksResponse{Networks: nws}, nil
}

// RemoveNetwork deletes a network no service uses. A service uses it when
// its spec attaches to it, or its previous spec does (a rollback would
// attach it again); tasks still running on it after their service was
// removed hold it too, until they stop.
func (s *Server) RemoveNetwork(ctx context.Context, req *api.RemoveNetworkRequest) (*api.RemoveNetworkResponse, error) {
	nw, err := s.resolveNetwork(ctx, req.GetNetworkId())
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx store.Tx) error {
		cur := tx.Network(nw.Id)
		if cur == nil {
			return nil // removed meanwhile: what was asked is done
		}
		if err := networkInUse(tx, cur); err != nil {
			return err
		}
		return tx.Delete(cur)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.log.Info("network removed", "network", nw.Id, "name", networkName(nw))
	return &api.RemoveNetworkResponse{}, nil
}

// CheckNetworkRemoval is the store delete check (see store.DeleteCheckOf)
// that keeps a network from going while something uses it. RemoveNetwork
// checks the same in its transaction, but a service attaching to the
// network between that read and the commit would be missed: this check,
// run as the delete applies, sees it. Networks are new with it, so, like
// CheckNetworkConflicts, it needs no ChecksVersion bump. It came with
// bindings on the network among the uses; no entry written before then
// deletes a network any binding was on (nothing wrote bindings), so that
// needs none either.
func CheckNetworkRemoval(after store.ReadTx, old *api.Network) error {
	return networkInUse(after, old)
}

// networkInUse refuses the removal of nw while something uses it: a
// service or a stopping task (networkUsers), or else a binding on it that
// the allocator has not freed yet, which it does once no task can still
// use the address (the service was removed or detached, its last tasks
// are stopping).
func networkInUse(tx store.ReadTx, nw *api.Network) error {
	if users := networkUsers(tx, nw.Id); users != "" {
		return status.Errorf(codes.FailedPrecondition, "network %s is in use by %s; remove or detach those services first (stopping tasks go away by themselves)", networkName(nw), users)
	}
	if n, services := networkBindings(tx, nw.Id); n > 0 {
		addresses := "addresses are"
		if n == 1 {
			addresses = "address is"
		}
		return status.Errorf(codes.FailedPrecondition, "network %s: %d %s still bound, by services %s; they are freed once the tasks that held them stopped, then remove the network again",
			networkName(nw), n, addresses, strings.Join(services, ", "))
	}
	return nil
}

// networkBindings counts the bindings on the network id and names their
// services, sorted. Network removal is rare, so it reads every binding.
func networkBindings(tx store.ReadTx, id string) (int, []string) {
	n, names := 0, make(map[string]bool)
	for _, b := range tx.Bindings() {
		if b.NetworkId == id {
			n++
			names[b.ServiceName] = true
		}
	}
	services := make([]string, 0, len(names))
	for name := range names {
		services = append(services, name)
	}
	sort.Strings(services)
	return n, services
}

// networkUsers says what in the state tx reads uses the network id: the
// services attached to it by their spec or previous spec, and the
// services of tasks still running on it whose service is gone; "" for
// none.
func networkUsers(tx store.ReadTx, id string) string {
	var services, previous []string
	live := make(map[string]bool)
	for _, svc := range tx.Services() {
		live[svc.Id] = true
		switch {
		case attachesTo(svc.GetSpec(), id):
			services = append(services, serviceName(svc))
		case attachesTo(svc.GetPreviousSpec(), id):
			previous = append(previous, serviceName(svc))
		}
	}
	gone := make(map[string]bool)
	for _, t := range tx.Tasks() {
		if !live[t.ServiceId] && t.GetStatus().GetState() <= api.TaskState_TASK_STATE_RUNNING &&
			slices.ContainsFunc(t.GetSpec().GetNetworks(), func(a *api.NetworkAttachmentConfig) bool { return a.Target == id }) {
			gone[t.ServiceName] = true
		}
	}
	var parts []string
	if len(services) > 0 {
		sort.Strings(services)
		parts = append(parts, "services "+strings.Join(services, ", "))
	}
	if len(previous) > 0 {
		sort.Strings(previous)
		parts = append(parts, "the previous spec (which a rollback returns to) of services "+strings.Join(previous, ", "))
	}
	if len(gone) > 0 {
		names := make([]string, 0, len(gone))
		for n := range gone {
			names = append(names, n)
		}
		sort.Strings(names)
		parts = append(parts, "tasks still stopping of removed services "+strings.Join(names, ", "))
	}
	return strings.Join(parts, " and ")
}

func attachesTo(spec *api.ServiceSpec, id string) bool {
	return slices.ContainsFunc(spec.GetTask().GetNetworks(), func(a *api.NetworkAttachmentConfig) bool { return a.Target == id })
}

// resolveNetwork finds a network by exact ID, name (in any case) or unique
// ID prefix.
func (s *Server) resolveNetwork(ctx context.Context, ref string) (*api.Network, error) {
	return resolve(ctx, s, "network_id", "network", ref, store.ReadTx.Networks, func(nw *api.Network) bool {
		return strings.EqualFold(networkName(nw), ref)
	})
}

func networkName(nw *api.Network) string { return nw.GetSpec().GetAnnotations().GetName() }

// freeVNI returns the lowest VNI from MinVNI up that none of nws holds.
func freeVNI(nws []*api.Network) (uint32, error) {
	used := make(map[uint32]bool, len(nws))
	for _, nw := range nws {
		used[nw.Vni] = true
	}
	for vni := uint32(MinVNI); vni <= MaxVNI; vni++ {
		if !used[vni] {
			return vni, nil
		}
	}
	return 0, status.Errorf(codes.ResourceExhausted, "every VNI from %d to %d is taken", MinVNI, MaxVNI)
}

// CheckNetworkConflicts is the store check (see store.CheckOf) that keeps
// a network's name, subnets and VNI its own, as CheckServiceConflicts does
// a service's name and ports: two creates that read the same state both
// find them free, and only this check, run as each entry applies, refuses
// the second. A VNI taken meanwhile is refused as a version conflict, so
// the writer's store.Update reads again and picks the next; a name or a
// subnet taken meanwhile is refused as the Control API refuses it.
//
// Networks are new with this check: no entry written under ChecksVersion 1
// holds a network (the Control API had no network RPCs), so the check
// changes how no existing entry applies and needs no ChecksVersion bump.
func CheckNetworkConflicts(after store.ReadTx, old, nw *api.Network) error {
	return checkNetworkConflicts(after, old, nw)
}

// vniTakenError refuses a VNI another network holds. It is a version
// conflict: the writer read a state in which the VNI was free.
type vniTakenError struct{ *FieldError }

func (vniTakenError) Unwrap() error { return store.ErrVersionConflict }

// checkNetworkConflicts refuses nw when it takes a name, a subnet or a VNI
// another network in the state tx reads holds, or a VNI out of range. Only
// what the write takes anew is checked: what cur, nw as stored (nil for a
// new network), already held stays its own.
func checkNetworkConflicts(tx store.ReadTx, cur, nw *api.Network) error {
	newName := cur == nil || !strings.EqualFold(networkName(cur), networkName(nw))
	newVNI := cur == nil || cur.Vni != nw.Vni
	held := make(map[string]bool)
	for _, c := range cur.GetSpec().GetIpam() {
		held[c.Subnet] = true
	}
	newSubnets := slices.ContainsFunc(nw.GetSpec().GetIpam(), func(c *api.IPAMConfig) bool { return !held[c.Subnet] })
	if !newName && !newVNI && !newSubnets {
		return nil
	}
	if newVNI && (nw.Vni < MinVNI || nw.Vni > MaxVNI) {
		return invalid("vni", "%d is outside the cluster's VNIs, %d to %d", nw.Vni, MinVNI, MaxVNI)
	}
	var others []*api.Network
	for _, o := range tx.Networks() {
		if o.Id != nw.Id {
			others = append(others, o)
		}
	}
	// The name and the subnets first: a create that lost them must be
	// refused, not retried as one that lost only its VNI.
	for _, o := range others {
		if newName && strings.EqualFold(networkName(o), networkName(nw)) {
			return &FieldError{
				Field:  "spec.annotations.name",
				Reason: fmt.Sprintf("a network named %q already exists (%s)", networkName(o), o.Id),
				Code:   codes.AlreadyExists,
			}
		}
	}
	for i, c := range nw.GetSpec().GetIpam() {
		sub, err := netip.ParsePrefix(c.Subnet)
		if err != nil || held[c.Subnet] {
			continue // validated when written; what cur held stays its own
		}
		for _, o := range others {
			for _, oc := range o.GetSpec().GetIpam() {
				if osub, err := netip.ParsePrefix(oc.Subnet); err == nil && osub.Overlaps(sub) {
					return invalid(fmt.Sprintf("spec.ipam[%d].subnet", i), "%s of network %s overlaps %s of network %s (%s)",
						sub, networkName(nw), osub, networkName(o), o.Id)
				}
			}
		}
	}
	for _, o := range others {
		if newVNI && o.Vni == nw.Vni {
			return vniTakenError{&FieldError{
				Field:  "vni",
				Reason: fmt.Sprintf("VNI %d is held by network %s (%s); retry", nw.Vni, networkName(o), o.Id),
				Code:   codes.Aborted,
			}}
		}
	}
	return nil
}

// resolveNetworkTargets rewrites each network attachment of spec to name
// its network by ID, found by ID, name (in any case) or unique ID prefix
// among the networks tx reads. Services store IDs, as docker does: the
// attachment then means the network the client meant when it wrote the
// spec, whatever is named what later, and comparisons of specs (is this
// update a change?) and of tasks with their service see one spelling.
// A target no network answers to is refused, and so is a network
// attached twice. Pinned addresses are rewritten in canonical form
// (fd00::5, not FD00:0::5), for the same one spelling.
func resolveNetworkTargets(tx store.ReadTx, spec *api.ServiceSpec) error {
	atts := spec.GetTask().GetNetworks()
	if len(atts) == 0 {
		return nil
	}
	nws := tx.Networks()
	seen := make(map[string]int, len(atts))
	for i, a := range atts {
		field := fmt.Sprintf("spec.task.networks[%d]", i)
		nw, err := pick("network", a.Target, nws, func(nw *api.Network) bool { return strings.EqualFold(networkName(nw), a.Target) })
		if err != nil {
			if status.Code(err) == codes.NotFound {
				return invalid(field, "network %q not found", a.Target)
			}
			return invalid(field, "%s", status.Convert(err).Message())
		}
		if j, dup := seen[nw.Id]; dup {
			return invalid(field, "network %s is attached already by spec.task.networks[%d]", networkName(nw), j)
		}
		seen[nw.Id] = i
		a.Target = nw.Id
		for slot, text := range a.Ips {
			if addr, err := parsePin(text); err == nil {
				a.Ips[slot] = addr.String()
			}
		}
	}
	return nil
}

// checkNetworksExist refuses an attachment to a network that does not
// exist in the state tx reads; targets are network IDs by now (see
// resolveNetworkTargets). Only attachments prev (the spec being replaced,
// nil for a new service) did not have are checked, as with constraints.
func checkNetworksExist(tx store.ReadTx, spec, prev *api.ServiceSpec) error {
	for i, a := range spec.GetTask().GetNetworks() {
		if attachesTo(prev, a.Target) {
			continue
		}
		if tx.Network(a.Target) == nil {
			return invalid(fmt.Sprintf("spec.task.networks[%d]", i), "network %q not found", a.Target)
		}
	}
	return nil
}
