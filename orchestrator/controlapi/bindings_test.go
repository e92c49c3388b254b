package controlapi_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// newBindingsEnv is nodes host-a and host-b, networks front and back, and
// services with bindings on them:
//   - web, replicated, scaled to 2: slots 1 and 2 bound on front and back,
//     slot 3 kept on front after a scale-down;
//   - mon, global: a binding per node on front, its task on host-a still
//     meant to run, the one on host-b shut down, and a binding of node
//     gone0001, removed from the cluster;
//   - api, replicated, 1 replica: its VIP and slot 1 on front.
func newBindingsEnv(t *testing.T) (e *testEnv, front, back *api.Network) {
	t.Helper()
	e = newTestEnv(t)
	e.addNodes(t,
		workerNode(nodeA, "host-a", api.NodeState_NODE_STATE_READY),
		workerNode(nodeB, "host-b", api.NodeState_NODE_STATE_READY),
	)
	front = e.createNetwork(t, networkSpec("front", "10.20.0.0/24"))
	back = e.createNetwork(t, networkSpec("back", "10.30.0.0/24"))
	webSpec := validSpec("web")
	withNetworks("front", "back")(webSpec)
	webSpec.GetReplicated().Replicas = 2
	web := e.create(t, webSpec)
	monSpec := validSpec("mon")
	withNetworks("front")(monSpec)
	monSpec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	mon := e.create(t, monSpec)
	apiSpec := validSpec("api")
	withNetworks("front")(apiSpec)
	apiSpec.GetReplicated().Replicas = 1
	apiSvc := e.create(t, apiSpec)

	node := func(id string, svc *api.Service, nodeID, address string) *api.IPBinding {
		return &api.IPBinding{Id: id, ServiceId: svc.Id, ServiceName: serviceNameOf(svc), NetworkId: front.Id,
			Kind: api.IPBinding_KIND_NODE, NodeId: nodeID, Address: address}
	}
	e.addBindings(t,
		// Created out of order: listings sort them.
		slotBinding("bweb3f", web, front, 3, "10.20.0.13/24"),
		slotBinding("bweb2b", web, back, 2, "10.30.0.12/24"),
		slotBinding("bweb1f", web, front, 1, "10.20.0.11/24"),
		slotBinding("bweb1b", web, back, 1, "10.30.0.11/24"),
		slotBinding("bweb2f", web, front, 2, "10.20.0.12/24"),
		node("bmonb", mon, nodeB, "10.20.0.22/24"),
		node("bmona", mon, nodeA, "10.20.0.21/24"),
		node("bmongone", mon, "gone0001", "10.20.0.23/24"),
		slotBinding("bapi1", apiSvc, front, 1, "10.20.0.31/24"),
		&api.IPBinding{Id: "bapivip", ServiceId: apiSvc.Id, ServiceName: "api", NetworkId: front.Id, Kind: api.IPBinding_KIND_VIP, Address: "10.20.0.30/24"},
	)
	tasks := []*api.Task{
		{Id: "tmona", ServiceId: mon.Id, ServiceName: "mon", NodeId: nodeA, DesiredState: api.TaskState_TASK_STATE_RUNNING},
		{Id: "tmonb", ServiceId: mon.Id, ServiceName: "mon", NodeId: nodeB, DesiredState: api.TaskState_TASK_STATE_SHUTDOWN},
	}
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		for _, tk := range tasks {
			if err := tx.Create(tk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("create tasks: %v", err)
	}
	return e, front, back
}

func bindingIDs(bs []*api.IPBinding) []string {
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.Id
	}
	return ids
}

func TestListBindings(t *testing.T) {
	e, front, back := newBindingsEnv(t)
	web := e.serviceID(t, "web")
	tests := []struct {
		name     string
		services []string
		networks []string
		want     []string
	}{
		{"all", nil, nil, []string{"bapi1", "bapivip", "bmongone", "bmona", "bmonb", "bweb1b", "bweb2b", "bweb1f", "bweb2f", "bweb3f"}},
		{"a service by name", []string{"web"}, nil, []string{"bweb1b", "bweb2b", "bweb1f", "bweb2f", "bweb3f"}},
		{"a service by ID prefix, a network by name in another case", []string{web[:6]}, []string{"FRONT"}, []string{"bweb1f", "bweb2f", "bweb3f"}},
		{"a network by ID", nil, []string{back.Id}, []string{"bweb1b", "bweb2b"}},
		{"two services, two networks", []string{"mon", "api"}, []string{front.Id, "back"}, []string{"bapi1", "bapivip", "bmongone", "bmona", "bmonb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.srv.ListBindings(t.Context(), &api.ListBindingsRequest{ServiceIds: tc.services, NetworkIds: tc.networks})
			if err != nil {
				t.Fatalf("ListBindings: %v", err)
			}
			if got := bindingIDs(resp.Bindings); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	refused := []struct {
		name string
		req  *api.ListBindingsRequest
		code codes.Code
		want string
	}{
		{"an empty service", &api.ListBindingsRequest{ServiceIds: []string{"web", ""}}, codes.InvalidArgument, "service_ids[1]: empty: must name a service"},
		{"an empty network", &api.ListBindingsRequest{NetworkIds: []string{""}}, codes.InvalidArgument, "network_ids[0]: empty: must name a network"},
		{"an unknown service", &api.ListBindingsRequest{ServiceIds: []string{"nosuch"}}, codes.NotFound, "service nosuch: no such service"},
		{"an unknown network", &api.ListBindingsRequest{NetworkIds: []string{"nosuch"}}, codes.NotFound, "network nosuch: no such network"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.srv.ListBindings(t.Context(), tc.req)
			assertCode(t, err, tc.code, tc.want)
		})
	}
}

func TestReleaseBinding(t *testing.T) {
	tests := []struct {
		name string
		req  *api.ReleaseBindingRequest
		// want are the bindings released, in order, when code is OK.
		want []string
		code codes.Code
		msg  string
	}{
		{name: "a kept slot on every network", req: &api.ReleaseBindingRequest{ServiceId: "web", Slot: 3}, want: []string{"bweb3f"}},
		{name: "a kept slot on its network", req: &api.ReleaseBindingRequest{ServiceId: "WEB", Slot: 3, NetworkId: "front"}, want: []string{"bweb3f"}},
		{name: "a node a global service's task left", req: &api.ReleaseBindingRequest{ServiceId: "mon", NodeId: "host-b"}, want: []string{"bmonb"}},
		{name: "a node removed from the cluster, by ID prefix", req: &api.ReleaseBindingRequest{ServiceId: "mon", NodeId: "gone0"}, want: []string{"bmongone"}},

		{name: "no service", req: &api.ReleaseBindingRequest{Slot: 3}, code: codes.InvalidArgument, msg: "service_id: must name a service"},
		{name: "an unknown service", req: &api.ReleaseBindingRequest{ServiceId: "nosuch", Slot: 3}, code: codes.NotFound, msg: "service nosuch: no such service"},
		{name: "a replicated service without slot", req: &api.ReleaseBindingRequest{ServiceId: "web"}, code: codes.InvalidArgument,
			msg: "slot: required: service web is replicated, its bindings are per slot, numbered from 1"},
		{name: "a replicated service by node", req: &api.ReleaseBindingRequest{ServiceId: "web", Slot: 3, NodeId: nodeA}, code: codes.InvalidArgument,
			msg: "node_id: service web is replicated: its bindings are per slot"},
		{name: "a global service by slot", req: &api.ReleaseBindingRequest{ServiceId: "mon", Slot: 1, NodeId: nodeA}, code: codes.InvalidArgument,
			msg: "slot: service mon is global: its bindings are per node"},
		{name: "a global service without node", req: &api.ReleaseBindingRequest{ServiceId: "mon"}, code: codes.InvalidArgument,
			msg: "node_id: required: service mon is global"},
		{name: "an unknown node", req: &api.ReleaseBindingRequest{ServiceId: "mon", NodeId: "nosuch"}, code: codes.NotFound, msg: "node nosuch: no such node"},
		{name: "an unknown network", req: &api.ReleaseBindingRequest{ServiceId: "web", Slot: 3, NetworkId: "nosuch"}, code: codes.NotFound,
			msg: "network nosuch: no such network"},
		{name: "a slot in use", req: &api.ReleaseBindingRequest{ServiceId: "web", Slot: 2}, code: codes.FailedPrecondition,
			msg: "slot 2 of web is in use (replicas 2); scale down below it first"},
		{name: "a node in use", req: &api.ReleaseBindingRequest{ServiceId: "mon", NodeId: nodeA}, code: codes.FailedPrecondition,
			msg: "node host-a (" + nodeA + ") of mon is in use: its task tmona is meant to run there"},
		{name: "a slot with no binding", req: &api.ReleaseBindingRequest{ServiceId: "web", Slot: 4}, code: codes.NotFound,
			msg: "service web has no binding for slot 4 on any network"},
		{name: "a slot with no binding on the network", req: &api.ReleaseBindingRequest{ServiceId: "web", Slot: 3, NetworkId: "back"}, code: codes.NotFound,
			msg: "service web has no binding for slot 3 on network back"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _, _ := newBindingsEnv(t)
			before := e.snapshot(t)
			var all []*api.IPBinding
			e.store.View(func(tx store.ReadTx) { all = tx.Bindings() })
			resp, err := e.srv.ReleaseBinding(t.Context(), tc.req)
			if tc.code != codes.OK {
				assertCode(t, err, tc.code, tc.msg)
				e.assertUnchanged(t, before)
				return
			}
			if err != nil {
				t.Fatalf("ReleaseBinding: %v", err)
			}
			if got := bindingIDs(resp.Bindings); !slices.Equal(got, tc.want) {
				t.Errorf("released %v, want %v", got, tc.want)
			}
			// Every binding is still there; only the released ones changed,
			// and only in release_requested.
			for _, was := range all {
				var now *api.IPBinding
				e.store.View(func(tx store.ReadTx) { now = tx.Binding(was.Id) })
				if now == nil {
					t.Fatalf("binding %s was deleted", was.Id)
				}
				released := slices.Contains(tc.want, was.Id)
				if now.ReleaseRequested != released {
					t.Errorf("binding %s: release_requested %v, want %v", was.Id, now.ReleaseRequested, released)
				}
				now.ReleaseRequested, now.Meta, was.Meta = false, nil, nil
				if !proto.Equal(now, was) {
					t.Errorf("binding %s changed beyond release_requested: %v, was %v", was.Id, now, was)
				}
			}
		})
	}
}

// A release asked twice writes nothing the second time and answers the
// same.
func TestReleaseBindingTwice(t *testing.T) {
	e, _, _ := newBindingsEnv(t)
	req := &api.ReleaseBindingRequest{ServiceId: "web", Slot: 3}
	if _, err := e.srv.ReleaseBinding(t.Context(), req); err != nil {
		t.Fatalf("ReleaseBinding: %v", err)
	}
	before := e.snapshot(t)
	resp, err := e.srv.ReleaseBinding(t.Context(), req)
	if err != nil {
		t.Fatalf("ReleaseBinding again: %v", err)
	}
	if got := bindingIDs(resp.Bindings); !slices.Equal(got, []string{"bweb3f"}) || !resp.Bindings[0].ReleaseRequested {
		t.Errorf("released %v", resp.Bindings)
	}
	e.assertUnchanged(t, before)
}

// fakeAllocator is an allocator whose state the test sets.
type fakeAllocator struct {
	state   *api.GetAllocatorStateResponse
	running bool
}

func (a *fakeAllocator) AllocatorState() (*api.GetAllocatorStateResponse, bool) {
	return a.state, a.running
}

func TestGetAllocatorState(t *testing.T) {
	state := &api.GetAllocatorStateResponse{StateJson: `{"pools":[]}`, Version: 9, RebuiltJson: `{"pools":[]}`, RebuiltVersion: 7,
		RebuildDuration: durationpb.New(3 * time.Millisecond), Inconsistencies: []string{"task t1: address differs from its binding"}}
	withLeader := func(s *api.GetAllocatorStateResponse, leader string) *api.GetAllocatorStateResponse {
		c := proto.Clone(s).(*api.GetAllocatorStateResponse)
		c.LeaderNodeId = leader
		return c
	}
	tests := []struct {
		name   string
		src    *fakeAllocator // nil: none set
		leader string
		want   *api.GetAllocatorStateResponse
		code   codes.Code
		msg    string
	}{
		{name: "the leader's allocator", src: &fakeAllocator{state, true}, leader: localID, want: withLeader(state, localID)},
		{name: "a state naming its leader", src: &fakeAllocator{withLeader(state, "other"), true}, leader: localID, want: withLeader(state, "other")},
		{name: "no allocator, another leader", leader: mgr2ID, code: codes.FailedPrecondition, msg: "this manager is not the leader; ask " + mgr2ID},
		{name: "a stopped allocator, another leader", src: &fakeAllocator{state, false}, leader: mgr2ID, code: codes.FailedPrecondition,
			msg: "this manager is not the leader; ask " + mgr2ID},
		{name: "no leader", src: &fakeAllocator{nil, false}, code: codes.FailedPrecondition, msg: "this manager is not the leader, and no leader is known"},
		{name: "the leader, its allocator not started", src: &fakeAllocator{nil, false}, leader: localID, code: codes.Unavailable,
			msg: "this manager is the leader but its allocator is not running yet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.raft.leader = tc.leader
			if tc.src != nil {
				e.srv.SetAllocatorSource(tc.src)
			}
			got, err := e.srv.GetAllocatorState(t.Context(), &api.GetAllocatorStateRequest{})
			if tc.code != codes.OK {
				assertCode(t, err, tc.code, tc.msg)
				return
			}
			if err != nil {
				t.Fatalf("GetAllocatorState: %v", err)
			}
			if !proto.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if tc.src.state.LeaderNodeId == "" && got == tc.src.state {
				t.Error("the answer is the allocator's own message, changed")
			}
		})
	}
}
