package controlapi

// This file owns the checks of a valid service spec against the cluster it
// is written to: its name is free, its networks exist, constraints that
// pin a node name one that exists, and its published ports are free. They
// run inside the write's transaction, so they judge the state the write
// commits over; servicespec.go checks the spec on its own.

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/shoal/shoal/api"
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
	cs, err := parseConstraints(exprs)
	if err != nil {
		return invalid("spec.task.placement.constraints", "%v", err)
	}
	var nodes []*api.Node
	for i, c := range cs {
		if !c.equal || (c.attr != "node.id" && c.attr != "node.hostname") {
			continue
		}
		if nodes == nil {
			nodes = tx.Nodes()
		}
		if !anyNodeMatches(nodes, c) {
			return invalid(fmt.Sprintf("spec.task.placement.constraints[%d]", i),
				"constraint %q: unknown node: no node has %s %s", exprs[i], strings.TrimPrefix(c.attr, "node."), c.value)
		}
	}
	return nil
}

// anyNodeMatches reports whether a node has the ID or hostname c wants,
// compared without regard to case as the scheduler matches constraints.
func anyNodeMatches(nodes []*api.Node, c constraint) bool {
	for _, n := range nodes {
		if (c.attr == "node.id" && strings.EqualFold(n.Id, c.value)) ||
			(c.attr == "node.hostname" && strings.EqualFold(n.GetDescription().GetHostname(), c.value)) {
			return true
		}
	}
	return false
}

// checkPortsFree refuses a published port (number and protocol) that
// another service publishes, in ingress or host mode alike.
func checkPortsFree(others []*api.Service, spec *api.ServiceSpec) error {
	ports := spec.GetEndpoint().GetPorts()
	if len(ports) == 0 {
		return nil
	}
	publishedBy := make(map[string]string)
	for _, s := range others {
		for _, p := range s.GetSpec().GetEndpoint().GetPorts() {
			if p.PublishedPort != 0 {
				publishedBy[portName(p)] = s.GetSpec().GetAnnotations().GetName()
			}
		}
	}
	for i, p := range ports {
		if p.PublishedPort == 0 {
			continue
		}
		if other, taken := publishedBy[portName(p)]; taken {
			return invalid(fmt.Sprintf("spec.endpoint.ports[%d]", i), "port %s is already published by service %s", portName(p), other)
		}
	}
	return nil
}
