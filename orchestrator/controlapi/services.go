package controlapi

// This file owns the service RPCs: create, get, list (with running and
// desired task counts), update (scale, rolling change, rollback) and
// remove. It decides how a spec change moves a service's spec_version and
// update_status; the reconcilers and the updater act on what it commits.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// CreateService validates a spec and writes a new service at spec_version
// 1; the replicated or global reconciler makes its tasks.
func (s *Server) CreateService(ctx context.Context, req *api.CreateServiceRequest) (*api.CreateServiceResponse, error) {
	if err := ValidateServiceSpec(req.GetSpec()); err != nil {
		return nil, err
	}
	svc := &api.Service{Id: api.NewID(), Spec: proto.Clone(req.Spec).(*api.ServiceSpec), SpecVersion: 1}
	err := s.update(ctx, func(tx store.Tx) error {
		if err := resolveNetworkTargets(tx, svc.Spec); err != nil {
			return err
		}
		if err := checkSpecInCluster(tx, svc, nil); err != nil {
			return err
		}
		return tx.Create(svc)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.log.Info("service created", "service", svc.Id, "name", svc.Spec.Annotations.Name)
	return &api.CreateServiceResponse{Service: s.committedService(svc)}, nil
}

// GetService returns one service.
func (s *Server) GetService(ctx context.Context, req *api.GetServiceRequest) (*api.GetServiceResponse, error) {
	svc, err := s.resolveService(ctx, req.GetServiceId())
	if err != nil {
		return nil, err
	}
	return &api.GetServiceResponse{Service: svc}, nil
}

// ListServices returns every service, sorted by name, with its running and
// desired task counts.
func (s *Server) ListServices(ctx context.Context, _ *api.ListServicesRequest) (*api.ListServicesResponse, error) {
	var (
		services []*api.Service
		tasks    []*api.Task
		nodes    []*api.Node
	)
	err := s.store.ViewLinearizable(ctx, func(tx store.ReadTx) {
		services, tasks, nodes = tx.Services(), tx.Tasks(), tx.Nodes()
	})
	if err != nil {
		return nil, toStatus(err)
	}
	sort.SliceStable(services, func(i, j int) bool {
		return services[i].GetSpec().GetAnnotations().GetName() < services[j].GetSpec().GetAnnotations().GetName()
	})
	nodeUp := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		nodeUp[n.Id] = n.GetStatus().GetState() != api.NodeState_NODE_STATE_DOWN
	}
	resp := &api.ListServicesResponse{
		Services: services,
		Running:  make(map[string]uint64, len(services)),
		Desired:  make(map[string]uint64, len(services)),
	}
	global := make(map[string]bool)
	for _, svc := range services {
		resp.Running[svc.Id] = 0
		resp.Desired[svc.Id] = svc.GetSpec().GetReplicated().GetReplicas()
		global[svc.Id] = svc.GetSpec().GetGlobal() != nil
	}
	for _, t := range tasks {
		if _, listed := resp.Desired[t.ServiceId]; !listed || t.DesiredState != api.TaskState_TASK_STATE_RUNNING {
			continue
		}
		if global[t.ServiceId] {
			resp.Desired[t.ServiceId]++
		}
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING && nodeUp[t.NodeId] {
			resp.Running[t.ServiceId]++
		}
	}
	return resp, nil
}

// UpdateService replaces a service's spec, or with rollback set returns it
// to its previous spec. The request must carry the service's current
// meta.version. Only a change of the task template or the endpoint moves
// spec_version and so starts a rolling update; a scale does not.
func (s *Server) UpdateService(ctx context.Context, req *api.UpdateServiceRequest) (*api.UpdateServiceResponse, error) {
	if req.Rollback {
		if proto.Size(req.GetSpec()) > 0 {
			return nil, invalid("spec", "must be empty when rollback is set")
		}
	} else if err := ValidateServiceSpec(req.GetSpec()); err != nil {
		return nil, err
	}
	svc, err := s.resolveService(ctx, req.GetServiceId())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var (
		updated *api.Service
		changed bool
	)
	err = s.update(ctx, func(tx store.Tx) error {
		cur := tx.Service(svc.Id)
		if cur == nil {
			return status.Errorf(codes.NotFound, "service %s: no such service", svc.Id)
		}
		if v := cur.GetMeta().GetVersion(); v != req.ServiceVersion {
			return &FieldError{
				Field: "service_version",
				Reason: fmt.Sprintf("update out of sequence: service %s is at version %d, not %d; read it again and retry",
					serviceName(cur), v, req.ServiceVersion),
				Code: codes.Aborted,
			}
		}
		stored := proto.Clone(cur).(*api.Service)
		var err error
		if req.Rollback {
			changed, err = true, rollbackService(cur, now)
			if err == nil {
				// The spec returned to was checked when it was written,
				// but its pins and update order depend on its replicas
				// and update configs, which changes since may have
				// made to it (see updateService).
				err = validateNetworkUse(cur.Spec)
			}
		} else {
			// Targets become IDs before the comparison, so naming a
			// network by its name again changes nothing.
			spec := proto.Clone(req.Spec).(*api.ServiceSpec)
			if err := resolveNetworkTargets(tx, spec); err != nil {
				return err
			}
			changed, err = updateService(cur, spec, now)
		}
		if err != nil || !changed {
			updated = cur
			return err
		}
		if err := checkSpecInCluster(tx, cur, stored); err != nil {
			return err
		}
		updated = cur
		return tx.Update(cur)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if changed {
		updated = s.committedService(updated)
		s.log.Info("service updated", "service", updated.Id, "name", serviceName(updated),
			"rollback", req.Rollback, "spec_version", updated.SpecVersion)
	}
	return &api.UpdateServiceResponse{Service: updated}, nil
}

// updateService changes cur to carry spec and reports whether anything
// changed. spec_version moves, and an update starts, only when the task
// template or the endpoint changed; only then does the current spec become
// the previous one. Any other change (a scale, labels, the update config)
// is made to the previous spec too, so previous_spec keeps the template
// the last update came from: the rollback the updater starts on its own,
// or one an operator asks for, returns that template and keeps the scale.
func updateService(cur *api.Service, spec *api.ServiceSpec, now time.Time) (bool, error) {
	if (cur.GetSpec().GetGlobal() != nil) != (spec.GetGlobal() != nil) {
		return false, invalid("spec.mode", "cannot change a %s service to %s; remove it and create it again", modeName(cur.Spec), modeName(spec))
	}
	if from, to := serviceName(cur), spec.GetAnnotations().GetName(); from != to {
		return false, invalid("spec.annotations.name", "cannot rename service %s to %s", from, to)
	}
	if sameSpec(cur.Spec, spec) {
		return false, nil
	}
	if !templateChanged(cur.Spec, spec) {
		cur.Spec = spec
		if cur.PreviousSpec != nil {
			cur.PreviousSpec = withTemplateOf(spec, cur.PreviousSpec)
		}
		return true, nil
	}
	cur.PreviousSpec, cur.PreviousSpecVersion = cur.Spec, cur.SpecVersion
	cur.Spec = spec
	startRollout(cur, api.UpdateStatus_STATE_UPDATING, "update in progress", now)
	return true, nil
}

// withTemplateOf returns a copy of spec with the task template and the
// endpoint of from.
func withTemplateOf(spec, from *api.ServiceSpec) *api.ServiceSpec {
	out := proto.Clone(spec).(*api.ServiceSpec)
	out.Task, out.Endpoint = from.GetTask(), from.GetEndpoint()
	return out
}

// rollbackService swaps cur's spec and previous spec: the task template
// and the endpoint of the last update return. Everything else is the same
// in both (see updateService), so a scale made since stays. Like an
// update, it moves spec_version only when the task template or the
// endpoint differ, which they do unless an older manager kept a previous
// spec with the same template.
func rollbackService(cur *api.Service, now time.Time) error {
	if cur.PreviousSpec == nil {
		return status.Errorf(codes.FailedPrecondition, "service %s has no previous spec to roll back to", serviceName(cur))
	}
	rolls := templateChanged(cur.Spec, cur.PreviousSpec)
	cur.Spec, cur.PreviousSpec = cur.PreviousSpec, cur.Spec
	cur.PreviousSpecVersion = cur.SpecVersion
	if rolls {
		startRollout(cur, api.UpdateStatus_STATE_ROLLBACK_STARTED, "manually requested rollback", now)
	}
	return nil
}

// startRollout moves cur's spec_version, so the updater replaces its tasks
// one batch at a time, and records in update_status why.
func startRollout(cur *api.Service, state api.UpdateStatus_State, message string, now time.Time) {
	cur.SpecVersion++
	cur.UpdateStatus = &api.UpdateStatus{State: state, StartedAt: timestamppb.New(now), Message: message}
}

// templateChanged reports whether tasks made from a would differ from
// tasks made from b: their template or their endpoint differs.
func templateChanged(a, b *api.ServiceSpec) bool {
	return !sameSpec(a.GetTask(), b.GetTask()) || !sameSpec(a.GetEndpoint(), b.GetEndpoint())
}

// RemoveService deletes a service; the reconcilers then set its tasks
// desired REMOVE and the reaper deletes them once they stopped.
func (s *Server) RemoveService(ctx context.Context, req *api.RemoveServiceRequest) (*api.RemoveServiceResponse, error) {
	svc, err := s.resolveService(ctx, req.GetServiceId())
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx store.Tx) error {
		cur := tx.Service(svc.Id)
		if cur == nil {
			return nil // removed meanwhile: what was asked is done
		}
		return tx.Delete(cur)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.log.Info("service removed", "service", svc.Id, "name", serviceName(svc))
	return &api.RemoveServiceResponse{}, nil
}

// resolveService finds a service by exact ID, name (in any case) or unique
// ID prefix.
func (s *Server) resolveService(ctx context.Context, ref string) (*api.Service, error) {
	return resolve(ctx, s, "service_id", "service", ref, store.ReadTx.Services, func(svc *api.Service) bool {
		return strings.EqualFold(serviceName(svc), ref)
	})
}

// committedService reads back a service just written, so the answer
// carries its committed meta; it falls back to what was staged.
func (s *Server) committedService(staged *api.Service) *api.Service {
	out := staged
	s.store.View(func(tx store.ReadTx) {
		if svc := tx.Service(staged.Id); svc != nil {
			out = svc
		}
	})
	return out
}

func serviceName(svc *api.Service) string { return svc.GetSpec().GetAnnotations().GetName() }

func modeName(spec *api.ServiceSpec) string {
	if spec.GetGlobal() != nil {
		return "global"
	}
	return "replicated"
}

// sameSpec reports whether two specs, or two parts of specs, ask for the
// same thing: an empty sub-message counts as an absent one, so a client
// sending "endpoint {}" for none starts no update. Well-known types keep
// their presence: a zero duration is not the default one.
func sameSpec(a, b proto.Message) bool {
	return proto.Equal(pruned(a), pruned(b))
}

// pruned returns a copy of m (an empty message when m is a typed nil)
// without empty sub-messages.
func pruned(m proto.Message) proto.Message {
	c := m.ProtoReflect().Type().New()
	if m.ProtoReflect().IsValid() {
		proto.Merge(c.Interface(), m)
	}
	prune(c)
	return c.Interface()
}

func prune(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i, l := 0, v.List(); i < l.Len(); i++ {
				prune(l.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				prune(mv.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			if strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
				break
			}
			prune(v.Message())
			// A oneof member keeps its presence: it is the choice.
			if fd.ContainingOneof() == nil && proto.Size(v.Message().Interface()) == 0 {
				m.Clear(fd)
			}
		}
		return true
	})
}
