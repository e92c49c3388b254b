package controlapi

// This file owns the checks of a valid service spec against the cluster it
// is written to: its name is free, its networks exist, constraints that
// pin a node name one that exists, and its published ports clash with no
// other service's. They run inside the write's transaction, so they judge
// the state the write commits over; servicespec.go checks the spec on its
// own.

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/scheduler"
	"github.com/shoal/shoal/orchestrator/store"
)

// checkSpecInCluster returns nil or the *FieldError refusing spec in the
// state tx reads. selfID is the service the spec is for ("" for a new
// service), which conflicts with nothing of its own.
func checkSpecInCluster(tx store.ReadTx, spec *api.ServiceSpec, selfID string) error {
	var others []*api.Service
	for _, s := range tx.Services() {
		if s.Id != selfID {
			others = append(others, s)
		}
	}
	if err := checkNameFree(others, spec); err != nil {
		return err
	}
	if err := checkNetworksExist(spec); err != nil {
		return err
	}
	if err := checkConstraintNodesExist(tx, spec); err != nil {
		return err
	}
	return checkPortsFree(others, spec)
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

// checkNetworksExist refuses every network attachment: there are no
// network objects yet, so no target can be found.
func checkNetworksExist(spec *api.ServiceSpec) error {
	if nets := spec.GetTask().GetNetworks(); len(nets) > 0 {
		return invalid("spec.task.networks[0]", "network %q not found", nets[0].GetTarget())
	}
	return nil
}

// checkConstraintNodesExist refuses a node.id==X or node.hostname==X
// constraint that no node satisfies: such a service could never run.
func checkConstraintNodesExist(tx store.ReadTx, spec *api.ServiceSpec) error {
	exprs := spec.GetTask().GetPlacement().GetConstraints()
	cs, err := scheduler.ParseConstraints(exprs)
	if err != nil {
		// Only a rollback gets here: the spec it returns to was checked
		// by the rules of its day. Refuse it as a new spec is refused.
		return validatePlacement("spec.task.placement", spec.GetTask().GetPlacement())
	}
	var nodes []*api.Node
	for i, c := range cs {
		if !c.NamesNode() {
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

// checkPortsFree refuses a published port (number and protocol) that
// clashes with another service's. An ingress-mode port is open on every
// node, so it clashes with the port published by any other service, in
// either mode. A host-mode port is open only on the nodes running the
// service's tasks: services may share one (the scheduler keeps their tasks
// apart), but not with a service publishing it in ingress mode.
func checkPortsFree(others []*api.Service, spec *api.ServiceSpec) error {
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
		if p.PublishedPort == 0 {
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
