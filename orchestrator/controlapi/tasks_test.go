package controlapi_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

const (
	nodeA = "nodeaaa1"
	nodeB = "nodebbb2"
)

// newTasksEnv is two nodes, services web, api and mon (global), and tasks
// of each, plus a task whose service is gone. Tasks are created out of
// order, with creation times apart.
func newTasksEnv(t *testing.T) (e *testEnv, web, mon *api.Service) {
	t.Helper()
	e = newTestEnv(t)
	e.addNodes(t,
		workerNode(nodeA, "host-a", api.NodeState_NODE_STATE_READY),
		workerNode(nodeB, "host-b", api.NodeState_NODE_STATE_READY),
	)
	web = e.create(t, validSpec("web"))
	apiSvc := e.create(t, validSpec("api"))
	monSpec := validSpec("mon")
	monSpec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	mon = e.create(t, monSpec)

	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const running, shutdown = api.TaskState_TASK_STATE_RUNNING, api.TaskState_TASK_STATE_SHUTDOWN
	task := func(id string, svc *api.Service, slot uint64, node string, desired api.TaskState, age int) *api.Task {
		return &api.Task{
			Id: id, ServiceId: svc.Id, ServiceName: serviceNameOf(svc), Slot: slot, NodeId: node, DesiredState: desired,
			Meta: &api.Meta{CreatedAt: timestamppb.New(t0.Add(time.Duration(age) * time.Second))},
		}
	}
	gone := &api.Service{Id: "svcgone", Spec: validSpec("zzz")}
	tasks := []*api.Task{
		task("taskw2new", web, 2, nodeA, running, 1),
		task("taskw1older", web, 1, nodeA, shutdown, 0),
		task("taskw1new", web, 1, nodeB, running, 5),
		task("taskw1old", web, 1, nodeA, shutdown, 1),
		task("taskzzz", gone, 1, nodeB, running, 0),
		task("taskmonb", mon, 0, nodeB, running, 0),
		task("taskmonaold", mon, 0, nodeA, shutdown, 1),
		task("taskmonanew", mon, 0, nodeA, running, 3),
		task("taskapi1", apiSvc, 1, nodeB, running, 2),
	}
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		for _, t := range tasks {
			if err := tx.Create(t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, web, mon
}

func TestListTasks(t *testing.T) {
	e, web, mon := newTasksEnv(t)
	const running, shutdown = api.TaskState_TASK_STATE_RUNNING, api.TaskState_TASK_STATE_SHUTDOWN
	tests := []struct {
		name string
		req  *api.ListTasksRequest
		want string
	}{
		{"all", &api.ListTasksRequest{},
			"taskapi1 taskmonanew taskmonaold taskmonb taskw1new taskw1old taskw1older taskw2new taskzzz"},
		{"a service by name", &api.ListTasksRequest{ServiceIds: []string{"web"}}, "taskw1new taskw1old taskw1older taskw2new"},
		{"a service by ID", &api.ListTasksRequest{ServiceIds: []string{web.Id}}, "taskw1new taskw1old taskw1older taskw2new"},
		{"a service by ID prefix", &api.ListTasksRequest{ServiceIds: []string{mon.Id[:8]}}, "taskmonanew taskmonaold taskmonb"},
		{"two services", &api.ListTasksRequest{ServiceIds: []string{"web", "api"}}, "taskapi1 taskw1new taskw1old taskw1older taskw2new"},
		{"one service named twice", &api.ListTasksRequest{ServiceIds: []string{"api", "API"}}, "taskapi1"},
		{"a node by hostname", &api.ListTasksRequest{NodeIds: []string{"host-a"}}, "taskmonanew taskmonaold taskw1old taskw1older taskw2new"},
		{"a node by ID prefix", &api.ListTasksRequest{NodeIds: []string{"nodebbb"}}, "taskapi1 taskmonb taskw1new taskzzz"},
		{"two nodes", &api.ListTasksRequest{NodeIds: []string{nodeA, "host-b"}},
			"taskapi1 taskmonanew taskmonaold taskmonb taskw1new taskw1old taskw1older taskw2new taskzzz"},
		{"a service on a node", &api.ListTasksRequest{ServiceIds: []string{"web"}, NodeIds: []string{nodeA}}, "taskw1old taskw1older taskw2new"},
		{"a desired state", &api.ListTasksRequest{DesiredStates: []api.TaskState{shutdown}}, "taskmonaold taskw1old taskw1older"},
		{"desired states of a service", &api.ListTasksRequest{ServiceIds: []string{"mon"}, DesiredStates: []api.TaskState{running, shutdown}},
			"taskmonanew taskmonaold taskmonb"},
		{"every filter", &api.ListTasksRequest{ServiceIds: []string{"web"}, NodeIds: []string{"host-b"}, DesiredStates: []api.TaskState{shutdown}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.srv.ListTasks(t.Context(), tc.req)
			if err != nil {
				t.Fatalf("ListTasks: %v", err)
			}
			var got []string
			for _, task := range resp.Tasks {
				got = append(got, task.Id)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %v\nwant %s", got, tc.want)
			}
		})
	}
}

func TestListTasksRefuses(t *testing.T) {
	e, _, _ := newTasksEnv(t)
	tests := []struct {
		name string
		req  *api.ListTasksRequest
		code codes.Code
		want string
	}{
		{"an unknown service", &api.ListTasksRequest{ServiceIds: []string{"web", "zzz"}}, codes.NotFound, "service zzz: no such service"},
		{"an unknown node", &api.ListTasksRequest{NodeIds: []string{"host-z"}}, codes.NotFound, "node host-z: no such node"},
		{"an ambiguous node prefix", &api.ListTasksRequest{NodeIds: []string{"node"}}, codes.InvalidArgument, "ambiguous"},
		{"an empty service", &api.ListTasksRequest{ServiceIds: []string{""}}, codes.InvalidArgument, "service_ids[0]"},
		{"an empty node", &api.ListTasksRequest{NodeIds: []string{nodeA, ""}}, codes.InvalidArgument, "node_ids[1]"},
		{"an unknown state", &api.ListTasksRequest{DesiredStates: []api.TaskState{99}}, codes.InvalidArgument, "desired_states[0]: 99 is not a task state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.srv.ListTasks(t.Context(), tc.req)
			assertCode(t, err, tc.code, tc.want)
		})
	}
}

func TestGetTask(t *testing.T) {
	e, _, _ := newTasksEnv(t)
	tests := []struct {
		ref  string
		want string
		code codes.Code
	}{
		{"taskw1new", "taskw1new", codes.OK},
		{"taskw2", "taskw2new", codes.OK},
		{"taskw1", "", codes.InvalidArgument},
		{"tasknone", "", codes.NotFound},
		{"", "", codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			resp, err := e.srv.GetTask(t.Context(), &api.GetTaskRequest{TaskId: tc.ref})
			if tc.code != codes.OK {
				assertCode(t, err, tc.code, "task")
				return
			}
			if err != nil {
				t.Fatalf("GetTask(%q): %v", tc.ref, err)
			}
			if resp.Task.Id != tc.want {
				t.Errorf("GetTask(%q) = %s, want %s", tc.ref, resp.Task.Id, tc.want)
			}
		})
	}
	_, err := e.srv.GetTask(t.Context(), &api.GetTaskRequest{TaskId: "taskw1"})
	assertCode(t, err, codes.InvalidArgument, `task "taskw1" is ambiguous: it matches taskw1new, taskw1old, taskw1older`)
}
