package reconciletest

// This file owns the builders of nodes and services. Options are plain
// functions on the object, so the same ones change a stored node
// (SetNode) as build a new one.

import (
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// Node returns a READY, ACTIVE linux/x86_64 node whose hostname is id,
// with an empty label map, changed by opts.
func Node(id string, opts ...func(*api.Node)) *api.Node {
	n := &api.Node{
		Id:          id,
		Spec:        &api.NodeSpec{Annotations: &api.Annotations{Name: id, Labels: map[string]string{}}},
		Description: &api.NodeDescription{Hostname: id, Os: "linux", Arch: "x86_64"},
		Status:      &api.NodeStatus{State: api.NodeState_NODE_STATE_READY},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// WithLabel sets a node label.
func WithLabel(k, v string) func(*api.Node) {
	return func(n *api.Node) {
		if n.Spec.Annotations == nil {
			n.Spec.Annotations = &api.Annotations{}
		}
		if n.Spec.Annotations.Labels == nil {
			n.Spec.Annotations.Labels = map[string]string{}
		}
		n.Spec.Annotations.Labels[k] = v
	}
}

// WithAvailability sets a node's availability (active, pause, drain).
func WithAvailability(a api.NodeAvailability) func(*api.Node) {
	return func(n *api.Node) { n.Spec.Availability = a }
}

// WithState sets a node's observed state (ready, down, ...).
func WithState(s api.NodeState) func(*api.Node) {
	return func(n *api.Node) { n.Status.State = s }
}

// SetNode returns a transaction that applies opts to stored node id.
func SetNode(id string, opts ...func(*api.Node)) func(store.Tx) error {
	return func(tx store.Tx) error {
		n := tx.Node(id)
		if n == nil {
			return store.ErrNotFound
		}
		for _, o := range opts {
			o(n)
		}
		return tx.Update(n)
	}
}

// ReplicatedService returns a service of replicas tasks named id, at
// spec_version 1, running nginx with an empty placement, changed by opts.
func ReplicatedService(id string, replicas uint64, opts ...func(*api.Service)) *api.Service {
	s := service(id)
	s.Spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}}
	return with(s, opts)
}

// GlobalService returns a global service named id, at spec_version 1,
// running nginx with an empty placement, changed by opts.
func GlobalService(id string, opts ...func(*api.Service)) *api.Service {
	s := service(id)
	s.Spec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	return with(s, opts)
}

// service returns a service without a mode.
func service(id string) *api.Service {
	return &api.Service{
		Id:          id,
		SpecVersion: 1,
		Spec: &api.ServiceSpec{
			Annotations: &api.Annotations{Name: id},
			Task: &api.TaskSpec{
				Container: &api.ContainerSpec{Image: "nginx"},
				Placement: &api.Placement{},
			},
		},
	}
}

func with(s *api.Service, opts []func(*api.Service)) *api.Service {
	for _, o := range opts {
		o(s)
	}
	return s
}

// WithRestart sets a service's restart policy.
func WithRestart(p *api.RestartPolicy) func(*api.Service) {
	return func(s *api.Service) { s.Spec.Task.Restart = p }
}

// WithConstraints sets a service's placement constraints.
func WithConstraints(exprs ...string) func(*api.Service) {
	return func(s *api.Service) { s.Spec.Task.Placement.Constraints = exprs }
}
