package controlapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/store"
)

func (e *testEnv) service(t *testing.T, id string) *api.Service {
	t.Helper()
	var s *api.Service
	e.store.View(func(tx store.ReadTx) { s = tx.Service(id) })
	if s == nil {
		t.Fatalf("service %s is not in the store", id)
	}
	return s
}

func (e *testEnv) create(t *testing.T, spec *api.ServiceSpec) *api.Service {
	t.Helper()
	resp, err := e.srv.CreateService(t.Context(), &api.CreateServiceRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateService %s: %v", spec.GetAnnotations().GetName(), err)
	}
	return resp.Service
}

func published(port uint32, proto api.PortConfig_Protocol, mode api.PortConfig_PublishMode) *api.PortConfig {
	return &api.PortConfig{TargetPort: 80, PublishedPort: port, Protocol: proto, PublishMode: mode}
}

const (
	tcp     = api.PortConfig_PROTOCOL_TCP
	udp     = api.PortConfig_PROTOCOL_UDP
	ingress = api.PortConfig_PUBLISH_MODE_INGRESS
	host    = api.PortConfig_PUBLISH_MODE_HOST
)

func TestCreateServiceRefusesInvalidSpecs(t *testing.T) {
	e := newTestEnv(t)
	before := e.snapshot(t)
	for _, tc := range invalidSpecCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.srv.CreateService(t.Context(), &api.CreateServiceRequest{Spec: specFor(tc)})
			assertCode(t, err, codes.InvalidArgument, tc.field+": ", tc.reason)
			e.assertUnchanged(t, before)
		})
	}
	_, err := e.srv.CreateService(t.Context(), &api.CreateServiceRequest{})
	assertCode(t, err, codes.InvalidArgument, "spec: missing")
	e.assertUnchanged(t, before)
}

// newServicesEnv is a cluster with one worker and two services publishing
// ports: web (8080/tcp ingress) and dns (5353/udp host mode).
func newServicesEnv(t *testing.T) (e *testEnv, web, dns *api.Service) {
	t.Helper()
	e = newTestEnv(t)
	e.addNodes(t, workerNode(worker1ID, "host-w1", api.NodeState_NODE_STATE_READY))
	webSpec := validSpec("web")
	webSpec.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{published(8080, tcp, ingress)}}
	dnsSpec := validSpec("dns")
	dnsSpec.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{published(5353, udp, host)}}
	return e, e.create(t, webSpec), e.create(t, dnsSpec)
}

func TestCreateServiceChecksTheCluster(t *testing.T) {
	tests := []struct {
		name   string
		spec   func(s *api.ServiceSpec)
		code   codes.Code // OK when the service must be created
		wanted []string
	}{
		{"a taken name", func(s *api.ServiceSpec) { s.Annotations.Name = "web" }, codes.AlreadyExists, []string{`spec.annotations.name: a service named "web" already exists`}},
		{"a taken name in another case", func(s *api.ServiceSpec) { s.Annotations.Name = "WEB" }, codes.AlreadyExists, []string{"spec.annotations.name"}},
		{"an ingress port taken in ingress mode", withPorts(published(8080, tcp, ingress)), codes.InvalidArgument,
			[]string{"spec.endpoint.ports[0]: port 8080/tcp is already published by service web"}},
		{"a host port taken in ingress mode", withPorts(published(8080, tcp, host)), codes.InvalidArgument,
			[]string{"spec.endpoint.ports[0]: port 8080/tcp is already published by service web in ingress mode, which takes it on every node"}},
		{"an ingress port taken in host mode", withPorts(published(9000, tcp, ingress), published(5353, udp, ingress)), codes.InvalidArgument,
			[]string{"spec.endpoint.ports[1]: port 5353/udp is already published by service dns in host mode; an ingress port needs it free on every node"}},
		// Host-mode clashes are the scheduler's: it keeps the two
		// services' tasks on different nodes.
		{"a host port taken in host mode", withPorts(published(9000, tcp, host), published(5353, udp, host)), codes.OK, nil},
		{"a constraint on an unknown node ID", withConstraints("node.role==worker", "node.id==nosuchnode"), codes.InvalidArgument,
			[]string{`spec.task.placement.constraints[1]: constraint "node.id==nosuchnode": unknown node`}},
		{"a constraint on an unknown hostname", withConstraints("node.hostname==host-x"), codes.InvalidArgument,
			[]string{"spec.task.placement.constraints[0]", "unknown node: no node has hostname host-x"}},
		{"a network", func(s *api.ServiceSpec) {
			s.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "x"}}
		}, codes.InvalidArgument, []string{`spec.task.networks[0]: network "x" not found`}},
		{"the port of web over udp", withPorts(published(8080, udp, ingress)), codes.OK, nil},
		{"the port of dns over tcp", withPorts(published(5353, tcp, host)), codes.OK, nil},
		{"a target port another service publishes", withPorts(&api.PortConfig{TargetPort: 8080, PublishedPort: 9090}), codes.OK, nil},
		{"a constraint on a known node", withConstraints("node.id==" + worker1ID), codes.OK, nil},
		{"a constraint on a known hostname", withConstraints("node.hostname==host-w1"), codes.OK, nil},
		{"a constraint on a known hostname in another case", withConstraints("node.hostname==HOST-W1"), codes.OK, nil},
		{"a constraint excluding an unknown node", withConstraints("node.hostname!=host-x", "node.id!=nosuchnode"), codes.OK, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _, _ := newServicesEnv(t)
			before := e.snapshot(t)
			spec := validSpec("api")
			tc.spec(spec)
			resp, err := e.srv.CreateService(t.Context(), &api.CreateServiceRequest{Spec: spec})
			if tc.code != codes.OK {
				assertCode(t, err, tc.code, tc.wanted...)
				e.assertUnchanged(t, before)
				return
			}
			if err != nil {
				t.Fatalf("CreateService: %v", err)
			}
			if got := e.service(t, resp.Service.Id); !proto.Equal(got.Spec, spec) {
				t.Errorf("stored spec %v, want %v", got.Spec, spec)
			}
		})
	}
}

func TestCreateAndGetService(t *testing.T) {
	e := newTestEnv(t)
	spec := validSpec("web")
	created := e.create(t, spec)
	stored := e.service(t, created.Id)
	if !proto.Equal(created, stored) {
		t.Errorf("CreateService answered %v, the store holds %v", created, stored)
	}
	if stored.SpecVersion != 1 || stored.UpdateStatus != nil || stored.PreviousSpec != nil || stored.Meta.GetVersion() == 0 {
		t.Errorf("new service: spec_version %d, update_status %v, previous_spec %v, meta %v; want 1, none, none, a version",
			stored.SpecVersion, stored.UpdateStatus, stored.PreviousSpec, stored.Meta)
	}
	if !proto.Equal(stored.Spec, spec) {
		t.Errorf("stored spec %v, want %v", stored.Spec, spec)
	}
	var tasks []*api.Task
	e.store.View(func(tx store.ReadTx) { tasks = tx.Tasks() })
	if len(tasks) != 0 {
		t.Errorf("CreateService made %d tasks; that is the reconcilers' job", len(tasks))
	}

	// A service whose name is the prefix of web's ID, to show names win.
	tricky := &api.Service{Id: "svc-tricky", Spec: validSpec(created.Id[:6]), SpecVersion: 1}
	other := &api.Service{Id: created.Id[:6] + "-other", Spec: validSpec("other"), SpecVersion: 1}
	if err := e.store.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.Create(tricky); err != nil {
			return err
		}
		return tx.Create(other)
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref    string
		wantID string
		code   codes.Code
	}{
		{created.Id, created.Id, codes.OK},
		{"web", created.Id, codes.OK},
		{"Web", created.Id, codes.OK},
		{created.Id[:10], created.Id, codes.OK},
		{created.Id[:6], tricky.Id, codes.OK}, // the name, not the ambiguous prefix
		{created.Id[:5], "", codes.InvalidArgument},
		{"nosuchservice", "", codes.NotFound},
		{"", "", codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			resp, err := e.srv.GetService(t.Context(), &api.GetServiceRequest{ServiceId: tc.ref})
			if tc.code != codes.OK {
				assertCode(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatalf("GetService(%q): %v", tc.ref, err)
			}
			if resp.Service.Id != tc.wantID {
				t.Errorf("GetService(%q) = %s, want %s", tc.ref, resp.Service.Id, tc.wantID)
			}
		})
	}
}

func TestRemoveService(t *testing.T) {
	e, web, dns := newServicesEnv(t)
	task := &api.Task{Id: "task1", ServiceId: web.Id, ServiceName: "web", Slot: 1, DesiredState: api.TaskState_TASK_STATE_RUNNING}
	if err := e.store.Update(t.Context(), func(tx store.Tx) error { return tx.Create(task) }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.RemoveService(t.Context(), &api.RemoveServiceRequest{ServiceId: "web"}); err != nil {
		t.Fatalf("RemoveService: %v", err)
	}
	var services []*api.Service
	var tasks []*api.Task
	e.store.View(func(tx store.ReadTx) { services, tasks = tx.Services(), tx.Tasks() })
	if len(services) != 1 || services[0].Id != dns.Id {
		t.Errorf("services after removing web: %v, want dns only", services)
	}
	if len(tasks) != 1 || tasks[0].DesiredState != api.TaskState_TASK_STATE_RUNNING {
		t.Errorf("tasks after removing web: %v; the reconcilers, not the API, stop them", tasks)
	}
	// Its port is free again.
	e.create(t, func() *api.ServiceSpec {
		s := validSpec("web2")
		s.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{published(8080, tcp, ingress)}}
		return s
	}())

	before := e.snapshot(t)
	_, err := e.srv.RemoveService(t.Context(), &api.RemoveServiceRequest{ServiceId: "web"})
	assertCode(t, err, codes.NotFound, "service web: no such service")
	_, err = e.srv.RemoveService(t.Context(), &api.RemoveServiceRequest{})
	assertCode(t, err, codes.InvalidArgument, "service_id")
	e.assertUnchanged(t, before)
}

func TestListServicesCounts(t *testing.T) {
	e := newTestEnv(t)
	e.addNodes(t,
		workerNode("nodeup", "host-up", api.NodeState_NODE_STATE_READY),
		workerNode("nodedown", "host-down", api.NodeState_NODE_STATE_DOWN),
		workerNode("nodeunknown", "host-unknown", api.NodeState_NODE_STATE_UNKNOWN),
	)
	web := e.create(t, validSpec("web"))
	monSpec := validSpec("mon")
	monSpec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	mon := e.create(t, monSpec)
	idle := e.create(t, validSpec("idle"))

	const (
		running  = api.TaskState_TASK_STATE_RUNNING
		pending  = api.TaskState_TASK_STATE_PENDING
		starting = api.TaskState_TASK_STATE_STARTING
		shutdown = api.TaskState_TASK_STATE_SHUTDOWN
		complete = api.TaskState_TASK_STATE_COMPLETE
	)
	n := 0
	task := func(svc *api.Service, node string, desired, observed api.TaskState) *api.Task {
		n++
		return &api.Task{Id: "task" + string(rune('a'+n)), ServiceId: svc.Id, ServiceName: serviceNameOf(svc), NodeId: node,
			DesiredState: desired, Status: &api.TaskStatus{State: observed}}
	}
	tasks := []*api.Task{
		task(web, "nodeup", running, running),        // counts
		task(web, "nodeunknown", running, running),   // counts: not down
		task(web, "nodedown", running, running),      // its node is down
		task(web, "nodegone", running, running),      // its node is gone
		task(web, "nodeup", shutdown, running),       // being stopped
		task(web, "", running, pending),              // not placed yet
		task(mon, "nodeup", running, running),        // counts, desired
		task(mon, "nodedown", running, starting),     // desired
		task(mon, "nodeunknown", complete, complete), // finished
		task(mon, "nodeup", shutdown, shutdown),      // replaced
	}
	if err := e.store.Update(t.Context(), func(tx store.Tx) error {
		for _, t := range tasks {
			if err := tx.Create(t); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	resp, err := e.srv.ListServices(t.Context(), &api.ListServicesRequest{})
	if err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	var names []string
	for _, s := range resp.Services {
		names = append(names, serviceNameOf(s))
	}
	if strings.Join(names, " ") != "idle mon web" {
		t.Errorf("services listed as %v, want idle mon web", names)
	}
	for _, want := range []struct {
		svc              *api.Service
		running, desired uint64
	}{{web, 2, 3}, {mon, 1, 2}, {idle, 0, 3}} {
		got, ok := resp.Running[want.svc.Id]
		if !ok || got != want.running || resp.Desired[want.svc.Id] != want.desired {
			t.Errorf("%s: %d/%d (listed %v), want %d/%d", serviceNameOf(want.svc), got, resp.Desired[want.svc.Id], ok, want.running, want.desired)
		}
	}
}

func serviceNameOf(s *api.Service) string { return s.GetSpec().GetAnnotations().GetName() }

// TestServiceAndTaskRPCsAreManagerOnly checks, through the authorizer the
// manager installs, that a worker certificate may call none of the Control
// methods and a manager's may call them all.
func TestServiceAndTaskRPCsAreManagerOnly(t *testing.T) {
	root, err := ca.NewRootCA(testClusterID)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*api.Node{
		"mgr": {Id: "mgr", Role: api.NodeRole_NODE_ROLE_MANAGER, Spec: &api.NodeSpec{DesiredRole: api.NodeRole_NODE_ROLE_MANAGER}},
		"wrk": {Id: "wrk", Role: api.NodeRole_NODE_ROLE_WORKER},
	}
	authz := ca.NewAuthorizer(func() string { return testClusterID }, func(id string) (*api.Node, error) {
		if n, ok := nodes[id]; ok {
			return n, nil
		}
		return nil, ca.ErrNodeNotFound
	})
	callAs := func(nodeID string, role api.NodeRole) context.Context {
		_, csrPEM, err := ca.GenerateKeyAndCSR()
		if err != nil {
			t.Fatal(err)
		}
		certPEM, _, err := root.IssueNodeCertificate(csrPEM, nodeID, role, testClusterID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(certPEM)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return peer.NewContext(t.Context(), &peer.Peer{
			Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242},
			AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}},
		})
	}
	manager, worker := callAs("mgr", api.NodeRole_NODE_ROLE_MANAGER), callAs("wrk", api.NodeRole_NODE_ROLE_WORKER)
	for _, m := range api.Control_ServiceDesc.Methods {
		method := "/" + api.Control_ServiceDesc.ServiceName + "/" + m.MethodName
		if err := authz.Authorize(manager, method); err != nil {
			t.Errorf("a manager calling %s: %v", method, err)
		}
		err := authz.Authorize(worker, method)
		if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "requires a manager certificate") {
			t.Errorf("a worker calling %s: %v, want PermissionDenied", method, err)
		}
	}
}
