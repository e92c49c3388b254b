package agent

// This file holds the doubles of the task tests: a dispatcher that scripts
// assignments and records reports, an executor that counts the calls the
// agent makes, and helpers to build assignments.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/exec/sim"
	"github.com/shoal/shoal/api"
)

// taskDispatcher serves one session at a time. Each session's assignments
// stream sends what the test pushes; reports are recorded per task.
type taskDispatcher struct {
	api.UnimplementedDispatcherServer

	mu          sync.Mutex
	sessions    int
	current     string
	end         chan struct{}                           // closing ends the current session
	assign      map[string]chan *api.AssignmentsMessage // by session ID
	calls       int                                     // UpdateTaskStatus calls
	failCalls   int                                     // calls still to fail with Aborted
	reports     map[string][]*api.TaskStatus            // by task ID, in order
	bySession   map[string]map[string]api.TaskState     // session → task → latest
	description *api.NodeDescription
}

func newTaskDispatcher() *taskDispatcher {
	return &taskDispatcher{
		assign:    make(map[string]chan *api.AssignmentsMessage),
		reports:   make(map[string][]*api.TaskStatus),
		bySession: make(map[string]map[string]api.TaskState),
	}
}

func (f *taskDispatcher) Session(req *api.SessionRequest, stream api.Dispatcher_SessionServer) error {
	f.mu.Lock()
	f.sessions++
	id := fmt.Sprintf("s%d", f.sessions)
	f.current = id
	end := make(chan struct{})
	f.end = end
	f.assign[id] = make(chan *api.AssignmentsMessage, 16)
	f.bySession[id] = make(map[string]api.TaskState)
	f.description = req.Description
	f.mu.Unlock()
	if err := stream.Send(&api.SessionMessage{SessionId: id, HeartbeatPeriod: durationpb.New(time.Hour)}); err != nil {
		return err
	}
	select {
	case <-end:
		return status.Error(codes.Unavailable, "session ended by the test")
	case <-stream.Context().Done():
		return nil
	}
}

func (f *taskDispatcher) Heartbeat(context.Context, *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	return &api.HeartbeatResponse{Period: durationpb.New(time.Hour)}, nil
}

func (f *taskDispatcher) Assignments(req *api.AssignmentsRequest, stream api.Dispatcher_AssignmentsServer) error {
	f.mu.Lock()
	ch, ok := f.assign[req.SessionId]
	current := req.SessionId == f.current
	f.mu.Unlock()
	if !ok || !current {
		return status.Error(codes.NotFound, "unknown session")
	}
	for {
		select {
		case m := <-ch:
			if err := stream.Send(m); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

func (f *taskDispatcher) UpdateTaskStatus(_ context.Context, req *api.UpdateTaskStatusRequest) (*api.UpdateTaskStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.SessionId != f.current {
		return nil, status.Error(codes.NotFound, "unknown session")
	}
	f.calls++
	if f.failCalls > 0 {
		f.failCalls--
		return nil, status.Error(codes.Aborted, "try again")
	}
	for _, u := range req.Updates {
		f.reports[u.TaskId] = append(f.reports[u.TaskId], u.Status)
		f.bySession[req.SessionId][u.TaskId] = u.Status.State
	}
	return &api.UpdateTaskStatusResponse{}, nil
}

// send pushes an assignments message to the current session's stream.
func (f *taskDispatcher) send(m *api.AssignmentsMessage) {
	f.mu.Lock()
	ch := f.assign[f.current]
	f.mu.Unlock()
	ch <- m
}

// endSession ends the current session, as a leader change does.
func (f *taskDispatcher) endSession() {
	f.mu.Lock()
	close(f.end)
	f.mu.Unlock()
}

func (f *taskDispatcher) sessionCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions
}

// latest is task id's last reported status, nil if none.
func (f *taskDispatcher) latest(id string) *api.TaskStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reports[id]
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1]
}

// waitState waits until task id is reported at state (on session, if set).
func (f *taskDispatcher) waitState(t *testing.T, id string, state api.TaskState, session string) *api.TaskStatus {
	t.Helper()
	eventually(t, fmt.Sprintf("%s is reported %v", id, state), func() bool {
		if session != "" {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.bySession[session][id] == state
		}
		return f.latest(id).GetState() == state
	})
	return f.latest(id)
}

// checkForward fails the test if any task was reported a state not past its
// previous report.
func (f *taskDispatcher) checkForward(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, reports := range f.reports {
		for i := 1; i < len(reports); i++ {
			if reports[i].State <= reports[i-1].State && f.sessionsOf(id) == 1 {
				t.Errorf("task %s reported %v after %v", id, reports[i].State, reports[i-1].State)
			}
			if reports[i].State < reports[i-1].State {
				t.Errorf("task %s moved back from %v to %v", id, reports[i-1].State, reports[i].State)
			}
		}
	}
}

// sessionsOf counts the sessions task id was reported on; f.mu is held.
func (f *taskDispatcher) sessionsOf(id string) int {
	n := 0
	for _, tasks := range f.bySession {
		if _, ok := tasks[id]; ok {
			n++
		}
	}
	return n
}

// countingExecutor wraps an executor and counts the calls of each
// controller method per task.
type countingExecutor struct {
	exec.Executor
	mu    sync.Mutex
	calls map[string]map[string]int // task → method → calls
}

func newCountingExecutor(t *testing.T, cfg sim.Config) *countingExecutor {
	e, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &countingExecutor{Executor: e, calls: make(map[string]map[string]int)}
}

func (c *countingExecutor) Controller(t *api.Task) (exec.Controller, error) {
	ctl, err := c.Executor.Controller(t)
	if err != nil {
		return nil, err
	}
	return &countingController{Controller: ctl, count: func(m string) { c.count(t.Id, m) }}, nil
}

func (c *countingExecutor) count(task, method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls[task] == nil {
		c.calls[task] = make(map[string]int)
	}
	c.calls[task][method]++
}

func (c *countingExecutor) callCount(task, method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[task][method]
}

// running reports whether task id's workload runs.
func (c *countingExecutor) running(t *testing.T, id string) bool {
	ctl, err := c.Executor.Controller(&api.Task{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctl.Wait(ctx) == context.Canceled
}

func (c *countingExecutor) taskIDs(t *testing.T) []string {
	ids, err := c.Executor.Tasks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

type countingController struct {
	exec.Controller
	count func(method string)
}

func (c *countingController) Prepare(ctx context.Context) error {
	c.count("Prepare")
	return c.Controller.Prepare(ctx)
}
func (c *countingController) Start(ctx context.Context) error {
	c.count("Start")
	return c.Controller.Start(ctx)
}
func (c *countingController) Shutdown(ctx context.Context) error {
	c.count("Shutdown")
	return c.Controller.Shutdown(ctx)
}
func (c *countingController) Remove(ctx context.Context) error {
	c.count("Remove")
	return c.Controller.Remove(ctx)
}

// startAgent runs an agent with executor e against the fake at addr until
// the returned stop is called (or the test ends).
func startAgent(t *testing.T, addr string, e exec.Executor) (stop func()) {
	t.Helper()
	a := newTestAgent([]string{addr}, nil)
	a.cfg.Executor = e
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitFor):
			t.Error("Run did not return after its context ended")
		}
	})
	t.Cleanup(stop)
	return stop
}

func assignedTask(id string, env ...string) *api.Task {
	return &api.Task{
		Id:           id,
		NodeId:       "n1",
		Spec:         &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Env: env}},
		DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status:       &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED},
	}
}

func withDesired(t *api.Task, d api.TaskState) *api.Task {
	c := proto.Clone(t).(*api.Task)
	c.DesiredState = d
	return c
}

func withStatus(t *api.Task, s api.TaskState) *api.Task {
	c := proto.Clone(t).(*api.Task)
	c.Status = &api.TaskStatus{State: s}
	return c
}

func complete(tasks ...*api.Task) *api.AssignmentsMessage {
	return &api.AssignmentsMessage{Type: api.AssignmentsMessage_TYPE_COMPLETE, UpdateTasks: tasks}
}

func incremental(tasks []*api.Task, removed ...string) *api.AssignmentsMessage {
	return &api.AssignmentsMessage{Type: api.AssignmentsMessage_TYPE_INCREMENTAL, UpdateTasks: tasks, RemoveTasks: removed}
}

const waitFor = 20 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
