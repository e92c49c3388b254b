package controlapi_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// update reads the service, lets change edit its spec and writes it back.
func (e *testEnv) update(t *testing.T, id string, change func(*api.ServiceSpec)) *api.Service {
	t.Helper()
	cur := e.service(t, id)
	spec := proto.Clone(cur.Spec).(*api.ServiceSpec)
	change(spec)
	resp, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: id, ServiceVersion: cur.Meta.Version, Spec: spec})
	if err != nil {
		t.Fatalf("UpdateService %s: %v", id, err)
	}
	return resp.Service
}

func (e *testEnv) rollback(t *testing.T, id string) (*api.Service, error) {
	t.Helper()
	cur := e.service(t, id)
	resp, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: id, ServiceVersion: cur.Meta.Version, Rollback: true})
	return resp.GetService(), err
}

func TestUpdateServiceVersions(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *api.ServiceSpec)
		// changed is false when the spec must stay as it was, unwritten.
		changed bool
		// rolls is true when spec_version must move and an update start.
		rolls bool
	}{
		{"scale", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 5 }, true, false},
		{"scale to zero", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 0 }, true, false},
		{"labels", func(s *api.ServiceSpec) { s.Annotations.Labels = map[string]string{"team": "a"} }, true, false},
		{"update config", withUpdate(&api.UpdateConfig{Parallelism: 2}), true, false},
		{"rollback config", func(s *api.ServiceSpec) { s.Rollback = &api.UpdateConfig{Parallelism: 1} }, true, false},
		{"image", func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:2" }, true, true},
		{"env", func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"A=1"} }, true, true},
		{"force update", func(s *api.ServiceSpec) { s.Task.ForceUpdate++ }, true, true},
		{"constraints", withConstraints("node.role==worker"), true, true},
		{"a zero restart delay, not the default", func(s *api.ServiceSpec) { s.Task.Restart = &api.RestartPolicy{Delay: secs(0)} }, true, true},
		{"a published port", withPorts(published(9000, tcp, ingress)), true, true},
		{"endpoint mode", func(s *api.ServiceSpec) { s.Endpoint = &api.EndpointSpec{Mode: api.EndpointSpec_MODE_DNSRR} }, true, true},
		{"nothing", func(*api.ServiceSpec) {}, false, false},
		{"empty messages for absent ones", func(s *api.ServiceSpec) {
			s.Endpoint = &api.EndpointSpec{}
			s.Task.Placement = &api.Placement{}
			s.Task.Resources = &api.ResourceRequirements{Limits: &api.Resources{}}
			s.Annotations.Labels = map[string]string{}
		}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			created := e.create(t, validSpec("web"))
			before := e.service(t, created.Id)
			resp := e.update(t, created.Id, tc.change)
			after := e.service(t, created.Id)
			if !proto.Equal(resp, after) {
				t.Errorf("UpdateService answered %v, the store holds %v", resp, after)
			}
			if !tc.changed {
				if !proto.Equal(before, after) {
					t.Errorf("an update changing nothing wrote %v over %v", after, before)
				}
				return
			}
			want := proto.Clone(before.Spec).(*api.ServiceSpec)
			tc.change(want)
			if !proto.Equal(after.Spec, want) {
				t.Errorf("spec %v, want %v", after.Spec, want)
			}
			if after.Meta.Version <= before.Meta.Version {
				t.Errorf("meta.version %d did not move past %d", after.Meta.Version, before.Meta.Version)
			}
			if !tc.rolls {
				if after.SpecVersion != 1 || after.UpdateStatus != nil {
					t.Errorf("spec_version %d, update_status %v; want 1 and none: no task changes", after.SpecVersion, after.UpdateStatus)
				}
				// Nothing to roll back to: a rollback returns the task
				// template, which did not change.
				if after.PreviousSpec != nil || after.PreviousSpecVersion != 0 {
					t.Errorf("previous spec %v at %d, want none", after.PreviousSpec, after.PreviousSpecVersion)
				}
				return
			}
			if !proto.Equal(after.PreviousSpec, before.Spec) || after.PreviousSpecVersion != 1 {
				t.Errorf("previous spec %v at %d, want the old spec at 1", after.PreviousSpec, after.PreviousSpecVersion)
			}
			us := after.UpdateStatus
			if after.SpecVersion != 2 || us.GetState() != api.UpdateStatus_STATE_UPDATING || us.GetMessage() != "update in progress" || us.GetStartedAt() == nil {
				t.Errorf("spec_version %d, update_status %v; want 2 and updating", after.SpecVersion, us)
			}
		})
	}
}

func TestUpdateServiceRefuses(t *testing.T) {
	tests := []struct {
		name string
		req  func(web, dns *api.Service) *api.UpdateServiceRequest
		code codes.Code
		want []string
	}{
		{"an old version", func(web, _ *api.Service) *api.UpdateServiceRequest {
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version - 1, Spec: web.Spec}
		}, codes.Aborted, []string{"service_version: update out of sequence", "service web is at version"}},
		{"a future version", func(web, _ *api.Service) *api.UpdateServiceRequest {
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version + 7, Spec: web.Spec}
		}, codes.Aborted, []string{"update out of sequence"}},
		{"replicated to global", func(web, _ *api.Service) *api.UpdateServiceRequest {
			spec := proto.Clone(web.Spec).(*api.ServiceSpec)
			spec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: spec}
		}, codes.InvalidArgument, []string{"spec.mode: cannot change a replicated service to global"}},
		{"a rename", func(web, _ *api.Service) *api.UpdateServiceRequest {
			spec := proto.Clone(web.Spec).(*api.ServiceSpec)
			spec.Annotations.Name = "www"
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: spec}
		}, codes.InvalidArgument, []string{"spec.annotations.name: cannot rename service web to www"}},
		{"an invalid spec", func(web, _ *api.Service) *api.UpdateServiceRequest {
			spec := proto.Clone(web.Spec).(*api.ServiceSpec)
			spec.Task.Container.Image = ""
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: spec}
		}, codes.InvalidArgument, []string{"spec.task.container.image: required"}},
		{"no spec", func(web, _ *api.Service) *api.UpdateServiceRequest {
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version}
		}, codes.InvalidArgument, []string{"spec: missing"}},
		{"another service's port", func(web, _ *api.Service) *api.UpdateServiceRequest {
			spec := proto.Clone(web.Spec).(*api.ServiceSpec)
			spec.Endpoint.Ports = append(spec.Endpoint.Ports, published(5353, udp, ingress))
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: spec}
		}, codes.InvalidArgument, []string{"spec.endpoint.ports[1]: port 5353/udp is already published by service dns in host mode"}},
		{"another service's ingress port, in host mode", func(_, dns *api.Service) *api.UpdateServiceRequest {
			spec := proto.Clone(dns.Spec).(*api.ServiceSpec)
			spec.Endpoint.Ports[0].PublishedPort = 8080
			spec.Endpoint.Ports[0].Protocol = tcp
			return &api.UpdateServiceRequest{ServiceId: dns.Id, ServiceVersion: dns.Meta.Version, Spec: spec}
		}, codes.InvalidArgument, []string{"spec.endpoint.ports[0]: port 8080/tcp is already published by service web in ingress mode"}},
		{"a constraint on an unknown node", func(web, _ *api.Service) *api.UpdateServiceRequest {
			spec := proto.Clone(web.Spec).(*api.ServiceSpec)
			spec.Task.Placement = &api.Placement{Constraints: []string{"node.id==gone"}}
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: spec}
		}, codes.InvalidArgument, []string{"spec.task.placement.constraints[0]", "unknown node"}},
		{"a rollback with a spec", func(web, _ *api.Service) *api.UpdateServiceRequest {
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: web.Spec, Rollback: true}
		}, codes.InvalidArgument, []string{"spec: must be empty when rollback is set"}},
		{"a rollback with nothing to return to", func(web, _ *api.Service) *api.UpdateServiceRequest {
			return &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Rollback: true}
		}, codes.FailedPrecondition, []string{"service web has no previous spec to roll back to"}},
		{"an unknown service", func(web, _ *api.Service) *api.UpdateServiceRequest {
			return &api.UpdateServiceRequest{ServiceId: "nosuchservice", ServiceVersion: web.Meta.Version, Spec: web.Spec}
		}, codes.NotFound, []string{"service nosuchservice: no such service"}},
		{"no service", func(web, _ *api.Service) *api.UpdateServiceRequest {
			return &api.UpdateServiceRequest{Spec: web.Spec}
		}, codes.InvalidArgument, []string{"service_id: must name a service"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, web, dns := newServicesEnv(t)
			before := e.snapshot(t)
			_, err := e.srv.UpdateService(t.Context(), tc.req(web, dns))
			assertCode(t, err, tc.code, tc.want...)
			e.assertUnchanged(t, before)
		})
	}
}

func TestUpdateServiceKeepsItsOwnPorts(t *testing.T) {
	e, web, _ := newServicesEnv(t)
	after := e.update(t, web.Id, func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:2" })
	if after.SpecVersion != 2 {
		t.Errorf("spec_version %d, want 2", after.SpecVersion)
	}
}

func TestUpdateGlobalService(t *testing.T) {
	e := newTestEnv(t)
	spec := validSpec("mon")
	spec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	created := e.create(t, spec)
	after := e.update(t, created.Id, func(s *api.ServiceSpec) { s.Task.Container.Image = "mon:2" })
	if after.SpecVersion != 2 || after.GetSpec().GetGlobal() == nil {
		t.Errorf("global service after an update: spec_version %d, mode %v", after.SpecVersion, after.GetSpec().GetMode())
	}
	before := e.snapshot(t)
	replicated := proto.Clone(after.Spec).(*api.ServiceSpec)
	replicated.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1}}
	_, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: "mon", ServiceVersion: after.Meta.Version, Spec: replicated})
	assertCode(t, err, codes.InvalidArgument, "spec.mode: cannot change a global service to replicated")
	e.assertUnchanged(t, before)
}

func TestRollbackService(t *testing.T) {
	e := newTestEnv(t)
	created := e.create(t, validSpec("web"))
	v1 := e.service(t, created.Id).Spec
	updated := e.update(t, created.Id, func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:2" })
	v2 := updated.Spec

	back, err := e.rollback(t, created.Id)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if !proto.Equal(back, e.service(t, created.Id)) {
		t.Errorf("the rollback answered %v, the store holds %v", back, e.service(t, created.Id))
	}
	us := back.UpdateStatus
	if !proto.Equal(back.Spec, v1) || !proto.Equal(back.PreviousSpec, v2) || back.SpecVersion != 3 || back.PreviousSpecVersion != 2 {
		t.Errorf("after the rollback: spec %v (version %d), previous %v (version %d); want the first spec at 3, the second at 2",
			back.Spec, back.SpecVersion, back.PreviousSpec, back.PreviousSpecVersion)
	}
	if us.GetState() != api.UpdateStatus_STATE_ROLLBACK_STARTED || us.GetMessage() != "manually requested rollback" || us.GetStartedAt() == nil {
		t.Errorf("update status %v, want a started manual rollback", us)
	}

	// Rolling back a rollback returns to the second spec, as docker does.
	again, err := e.rollback(t, created.Id)
	if err != nil {
		t.Fatalf("second rollback: %v", err)
	}
	if !proto.Equal(again.Spec, v2) || again.SpecVersion != 4 {
		t.Errorf("after the second rollback: spec %v at %d, want the second spec at 4", again.Spec, again.SpecVersion)
	}
}

// A change that replaces no task (a scale, labels, the update config) made
// during an update must leave the template the update came from as the one
// to return to: the updater's automatic rollback and a manual one swap the
// spec with previous_spec. Such a change carries over to previous_spec, so
// the rollback keeps it.
func TestChangesThatRollNoTaskKeepThePreviousTemplate(t *testing.T) {
	e := newTestEnv(t)
	created := e.create(t, validSpec("web"))
	e.update(t, created.Id, func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:2" })
	changes := []func(*api.ServiceSpec){
		func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 5 },
		func(s *api.ServiceSpec) { s.Annotations.Labels = map[string]string{"team": "a"} },
		withUpdate(&api.UpdateConfig{Parallelism: 2}),
	}
	var cur *api.Service
	for _, change := range changes {
		cur = e.update(t, created.Id, change)
	}
	if img := cur.GetPreviousSpec().GetTask().GetContainer().GetImage(); img != "nginx:1" || cur.PreviousSpecVersion != 1 || cur.SpecVersion != 2 {
		t.Fatalf("after a scale, labels and an update config: previous image %q at %d, spec_version %d; want nginx:1 at 1 and 2",
			img, cur.PreviousSpecVersion, cur.SpecVersion)
	}
	wantPrevious := proto.Clone(cur.Spec).(*api.ServiceSpec)
	wantPrevious.Task.Container.Image = "nginx:1"
	if !proto.Equal(cur.PreviousSpec, wantPrevious) {
		t.Errorf("previous spec %v, want the current one with the previous template %v", cur.PreviousSpec, wantPrevious)
	}

	back, err := e.rollback(t, created.Id)
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if img := back.Spec.Task.Container.Image; img != "nginx:1" || back.SpecVersion != 3 ||
		back.UpdateStatus.GetState() != api.UpdateStatus_STATE_ROLLBACK_STARTED {
		t.Errorf("after the rollback: image %q, spec_version %d, status %v; want nginx:1 rolling back at 3",
			img, back.SpecVersion, back.UpdateStatus)
	}
	if got := back.Spec.GetReplicated().GetReplicas(); got != 5 || back.Spec.Annotations.Labels["team"] != "a" {
		t.Errorf("after the rollback: replicas %d, labels %v; want the scale and labels kept", got, back.Spec.Annotations.Labels)
	}
	if img := back.PreviousSpec.GetTask().GetContainer().GetImage(); img != "nginx:2" || back.PreviousSpecVersion != 2 {
		t.Errorf("after the rollback: previous image %q at %d, want nginx:2 at 2", img, back.PreviousSpecVersion)
	}
}

func TestRollbackAfterOnlyAScaleHasNothingToReturnTo(t *testing.T) {
	e := newTestEnv(t)
	created := e.create(t, validSpec("web"))
	e.update(t, created.Id, func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 7 })
	before := e.snapshot(t)
	_, err := e.rollback(t, created.Id)
	assertCode(t, err, codes.FailedPrecondition, "service web has no previous spec to roll back to")
	e.assertUnchanged(t, before)
}

func TestRollbackRefusesAPortTakenMeanwhile(t *testing.T) {
	e, web, _ := newServicesEnv(t)
	e.update(t, web.Id, func(s *api.ServiceSpec) { s.Endpoint.Ports[0].PublishedPort = 8081 })
	e.create(t, func() *api.ServiceSpec {
		s := validSpec("api")
		s.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{published(8080, tcp, host)}}
		return s
	}())
	before := e.snapshot(t)
	_, err := e.rollback(t, web.Id)
	assertCode(t, err, codes.InvalidArgument, "spec.endpoint.ports[0]: port 8080/tcp is already published by service api in host mode")
	e.assertUnchanged(t, before)
}

// Services may share a host-mode port, but a port in ingress mode is the
// cluster's, whichever service publishes it first.
func TestHostModePortsAreShared(t *testing.T) {
	e, _, dns := newServicesEnv(t)
	resolver := validSpec("resolver")
	resolver.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{published(5353, udp, host)}}
	resolverSvc := e.create(t, resolver)

	before := e.snapshot(t)
	_, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{
		ServiceId: dns.Id, ServiceVersion: dns.Meta.Version,
		Spec: func() *api.ServiceSpec {
			s := proto.Clone(dns.Spec).(*api.ServiceSpec)
			s.Endpoint.Ports[0].PublishMode = ingress
			return s
		}(),
	})
	assertCode(t, err, codes.InvalidArgument,
		"spec.endpoint.ports[0]: port 5353/udp is already published by service resolver in host mode")
	e.assertUnchanged(t, before)

	// Once the other publisher leaves, dns may take the port cluster-wide.
	if _, err := e.srv.RemoveService(t.Context(), &api.RemoveServiceRequest{ServiceId: resolverSvc.Id}); err != nil {
		t.Fatalf("RemoveService: %v", err)
	}
	after := e.update(t, dns.Id, func(s *api.ServiceSpec) { s.Endpoint.Ports[0].PublishMode = ingress })
	if got := after.Spec.Endpoint.Ports[0].PublishMode; got != ingress {
		t.Errorf("publish mode %v after the update, want ingress", got)
	}
}

// A constraint pinning a node that has since left the cluster must not
// lock its service: only a constraint the update adds has to name a node
// that exists, so the operator can still scale the service to zero or
// move it elsewhere.
func TestUpdateChecksOnlyTheConstraintsItAdds(t *testing.T) {
	e := newTestEnv(t)
	e.addNodes(t, workerNode(worker1ID, "host-w1", api.NodeState_NODE_STATE_READY))
	spec := validSpec("web")
	withConstraints("node.id=="+worker1ID, "node.hostname == host-w1")(spec)
	created := e.create(t, spec)
	if err := e.store.Update(t.Context(), func(tx store.Tx) error { return tx.Delete(tx.Node(worker1ID)) }); err != nil {
		t.Fatalf("remove the node: %v", err)
	}

	e.update(t, created.Id, func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 0 })
	e.update(t, created.Id, func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:2" })
	// The same constraints, written another way, are not new ones.
	e.update(t, created.Id, withConstraints("node.hostname==host-w1", "NODE.ID=="+worker1ID, "node.role==worker"))

	cur := e.service(t, created.Id)
	before := e.snapshot(t)
	spec = proto.Clone(cur.Spec).(*api.ServiceSpec)
	spec.Task.Placement.Constraints = append(spec.Task.Placement.Constraints, "node.hostname==host-w2")
	_, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: cur.Id, ServiceVersion: cur.Meta.Version, Spec: spec})
	assertCode(t, err, codes.InvalidArgument, `spec.task.placement.constraints[3]: constraint "node.hostname==host-w2": unknown node`)
	e.assertUnchanged(t, before)
}
