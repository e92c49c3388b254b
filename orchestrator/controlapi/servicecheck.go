package controlapi

// This file owns the checks of a valid service spec against the cluster it
// is written to: its name is free, its networks exist, constraints that
// pin a node name one that exists, and its published ports clash with no
// other service's. They run inside the write's transaction, on the state
// it read; that state may be older than the one the write commits over,
// so the name and port checks, which keep invariants across services, and
// the network check, which a network's removal could otherwise race, run
// once more in the store as the write applies (CheckServiceConflicts).
// servicespec.go checks the spec on its own; networks.go finds the
// networks a spec's attachments name (resolveNetworkTargets), before these
// checks run.

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/shoal/shoal/api"
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
