package agent

// Tests of the agent's task side against a fake dispatcher that scripts
// assignments and records status reports, with the sim executor wrapped to
// count what the agent asks of it (taskfakes_test.go).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/exec/sim"
	"github.com/shoal/shoal/api"
)

// Tasks go from ASSIGNED to RUNNING and on to the state their workload
// ends in; the reports carry exit codes and errors.
func TestTaskRunsToItsEnd(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		want     api.TaskState
		wantExit int32
		wantErr  string
	}{
		{name: "runs", want: api.TaskState_TASK_STATE_RUNNING},
		{name: "completes", env: []string{"SIM_RUN_FOR=1ms"}, want: api.TaskState_TASK_STATE_COMPLETE},
		{name: "fails with a code", env: []string{"SIM_RUN_FOR=1ms", "SIM_EXIT_CODE=2"}, want: api.TaskState_TASK_STATE_FAILED, wantExit: 2, wantErr: "exit code 2"},
		{name: "fails to start", env: []string{"SIM_FAIL_START=1"}, want: api.TaskState_TASK_STATE_FAILED, wantErr: "failed to start"},
		{name: "cannot be prepared", env: []string{"SIM_RUN_FOR=later"}, want: api.TaskState_TASK_STATE_REJECTED, wantErr: "SIM_RUN_FOR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTaskDispatcher()
			e := newCountingExecutor(t, sim.Config{})
			startAgent(t, serve(t, f), e)
			eventually(t, "a session opens", func() bool { return f.sessionCount() == 1 })
			f.send(complete(assignedTask("t1", tc.env...)))
			got := f.waitState(t, "t1", tc.want, "")
			if got.ExitCode != tc.wantExit || !strings.Contains(got.Err, tc.wantErr) {
				t.Errorf("reported %v, want exit code %d and an error with %q", got, tc.wantExit, tc.wantErr)
			}
			if tc.wantErr == "" && got.Err != "" {
				t.Errorf("reported error %q", got.Err)
			}
			f.checkForward(t)
		})
	}
}

// A task desired SHUTDOWN is stopped and reported SHUTDOWN; the cluster
// removing it removes its workload.
func TestTaskStopsAndIsRemoved(t *testing.T) {
	f := newTaskDispatcher()
	e := newCountingExecutor(t, sim.Config{})
	startAgent(t, serve(t, f), e)
	eventually(t, "a session opens", func() bool { return f.sessionCount() == 1 })
	task := assignedTask("t1")
	f.send(complete(task))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, "")

	f.send(incremental([]*api.Task{withDesired(task, api.TaskState_TASK_STATE_SHUTDOWN)}))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_SHUTDOWN, "")
	if e.running(t, "t1") {
		t.Error("the workload runs after SHUTDOWN was reported")
	}
	f.send(incremental(nil, "t1"))
	eventually(t, "the workload is removed", func() bool { return len(e.taskIDs(t)) == 0 })
	f.checkForward(t)
}

// After a reconnect (a leader change) the agent reports every task's
// latest state again, on the new session, without restarting anything.
func TestReconnectReReportsWithoutRestart(t *testing.T) {
	f := newTaskDispatcher()
	e := newCountingExecutor(t, sim.Config{})
	startAgent(t, serve(t, f), e)
	eventually(t, "a session opens", func() bool { return f.sessionCount() == 1 })
	t1, t2 := assignedTask("t1"), assignedTask("t2", "SIM_RUN_FOR=1ms")
	f.send(complete(t1, t2))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, "s1")
	f.waitState(t, "t2", api.TaskState_TASK_STATE_COMPLETE, "s1")

	f.endSession()
	eventually(t, "a new session opens", func() bool { return f.sessionCount() == 2 })
	f.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, "s2")
	f.waitState(t, "t2", api.TaskState_TASK_STATE_COMPLETE, "s2")
	// The new leader's view may lag: an older stored state must not send
	// the agent back.
	f.send(complete(t1, withStatus(t2, api.TaskState_TASK_STATE_RUNNING)))
	f.send(incremental([]*api.Task{withDesired(t1, api.TaskState_TASK_STATE_SHUTDOWN)}))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_SHUTDOWN, "s2")

	for _, m := range []string{"Prepare", "Start"} {
		if n := e.callCount("t1", m); n != 1 {
			t.Errorf("t1: %s called %d times, want once", m, n)
		}
	}
	if n := e.callCount("t2", "Start"); n != 1 {
		t.Errorf("t2 was started %d times, want once", n)
	}
	if got := f.latest("t2").GetState(); got != api.TaskState_TASK_STATE_COMPLETE {
		t.Errorf("t2 last reported %v, want COMPLETE", got)
	}
	f.checkForward(t)
}

// A new agent given the same executor (a role switch) adopts the running
// tasks: they keep running, are not started again, and obey the new agent.
func TestNewAgentAdoptsRunningTasks(t *testing.T) {
	f := newTaskDispatcher()
	addr := serve(t, f)
	e := newCountingExecutor(t, sim.Config{})
	stop := startAgent(t, addr, e)
	eventually(t, "a session opens", func() bool { return f.sessionCount() == 1 })
	task := assignedTask("t1")
	f.send(complete(task))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, "")
	stop()
	if !e.running(t, "t1") {
		t.Fatal("stopping the agent stopped its task")
	}

	startAgent(t, addr, e)
	eventually(t, "the new agent's session opens", func() bool { return f.sessionCount() == 2 })
	f.send(complete(withStatus(task, api.TaskState_TASK_STATE_RUNNING)))
	f.send(incremental([]*api.Task{withDesired(withStatus(task, api.TaskState_TASK_STATE_RUNNING), api.TaskState_TASK_STATE_SHUTDOWN)}))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_SHUTDOWN, "s2")
	if n := e.callCount("t1", "Start"); n != 1 {
		t.Errorf("t1 was started %d times, want once", n)
	}
}

// A COMPLETE message drops what it does not name: the agent's tasks and the
// executor's workloads nobody knows of.
func TestCompleteDropsUnnamedTasks(t *testing.T) {
	f := newTaskDispatcher()
	e := newCountingExecutor(t, sim.Config{})
	// A workload left from an earlier agent, of a task since deleted.
	orphan, _ := e.Executor.Controller(assignedTask("t0"))
	if err := orphan.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := orphan.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	startAgent(t, serve(t, f), e)
	eventually(t, "a session opens", func() bool { return f.sessionCount() == 1 })
	t1, t2 := assignedTask("t1"), assignedTask("t2")
	f.send(complete(t1, t2))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, "")
	f.waitState(t, "t2", api.TaskState_TASK_STATE_RUNNING, "")
	if ids := e.taskIDs(t); !slices.Equal(ids, []string{"t1", "t2"}) {
		t.Fatalf("workloads %v, want [t1 t2]: the orphan t0 stays", ids)
	}

	f.send(complete(withStatus(t2, api.TaskState_TASK_STATE_RUNNING)))
	eventually(t, "t1's workload is removed", func() bool { return slices.Equal(e.taskIDs(t), []string{"t2"}) })
	if !e.running(t, "t2") {
		t.Error("the named task stopped")
	}
}

// Reports of a burst share a call; a call that fails is retried.
func TestReportsAreBatchedAndRetried(t *testing.T) {
	f := newTaskDispatcher()
	f.failCalls = 1
	e := newCountingExecutor(t, sim.Config{})
	startAgent(t, serve(t, f), e)
	eventually(t, "a session opens", func() bool { return f.sessionCount() == 1 })
	const n = 50
	var tasks []*api.Task
	for i := range n {
		tasks = append(tasks, assignedTask(fmt.Sprintf("t%02d", i)))
	}
	f.send(complete(tasks...))
	for _, task := range tasks {
		f.waitState(t, task.Id, api.TaskState_TASK_STATE_RUNNING, "")
	}
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	// Each task went through four states: one call per state would make
	// 200, one per task 50.
	if calls >= n {
		t.Errorf("%d UpdateTaskStatus calls for %d tasks, want them batched", calls, n)
	}
	f.checkForward(t)
}

// The session reports the executor's resources and labels, under the
// labels the node was configured with.
func TestDescriptionIncludesExecutor(t *testing.T) {
	f := newTaskDispatcher()
	e := newCountingExecutor(t, sim.Config{NanoCPUs: 2e9, MemoryBytes: 1 << 30, EngineLabels: map[string]string{"a": "executor", "b": "executor"}})
	a := newTestAgent([]string{serve(t, f)}, nil)
	a.cfg.Executor = e
	a.cfg.Description = &api.NodeDescription{Hostname: "n1", EngineLabels: map[string]string{"b": "flag"}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "a session opens", func() bool { return f.sessionCount() == 1 })
	f.mu.Lock()
	d := f.description
	f.mu.Unlock()
	want := &api.NodeDescription{
		Hostname: "n1", Executor: "sim", EngineVersion: "sim",
		Resources:    &api.Resources{NanoCpus: 2e9, MemoryBytes: 1 << 30},
		EngineLabels: map[string]string{"a": "executor", "b": "flag"},
	}
	if !proto.Equal(d, want) {
		t.Errorf("description %v, want %v", d, want)
	}
}

// A task serving on networks keeps running for the endpoint grace once it is to stop (load
// balancers drop it first).
func TestEndpointGraceBeforeShutdown(t *testing.T) {
	const grace = 300 * time.Millisecond
	f, e := newTaskDispatcher(), newCountingExecutor(t, sim.Config{})
	startGraceAgent(t, f, e, grace)
	serving := assignedTask("t1")
	serving.Networks = []*api.NetworkAttachment{{NetworkId: "net1", Address: "10.0.0.5/24"}}
	f.send(complete(serving))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, "")
	asked := time.Now()
	f.send(incremental([]*api.Task{withDesired(serving, api.TaskState_TASK_STATE_SHUTDOWN)}))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_SHUTDOWN, "")
	if waited := time.Since(asked); waited < grace {
		t.Errorf("the serving task was shut down %s after it was asked to stop, before the %s grace", waited, grace)
	}
}

// Even a long endpoint grace does not hold back a task on no network, nor one the cluster
// removes.
func TestEndpointGraceOnlyForServingTasks(t *testing.T) {
	f, e := newTaskDispatcher(), newCountingExecutor(t, sim.Config{})
	startGraceAgent(t, f, e, time.Hour)
	serving := assignedTask("t1")
	serving.Networks = []*api.NetworkAttachment{{NetworkId: "net1", Address: "10.0.0.5/24"}}
	plain := assignedTask("t2")
	f.send(complete(serving, plain))
	f.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, "")
	f.waitState(t, "t2", api.TaskState_TASK_STATE_RUNNING, "")
	f.send(incremental([]*api.Task{withDesired(plain, api.TaskState_TASK_STATE_SHUTDOWN)}, "t1"))
	f.waitState(t, "t2", api.TaskState_TASK_STATE_SHUTDOWN, "")
	eventually(t, "the removed task's workload is gone", func() bool { return !slices.Contains(e.taskIDs(t), "t1") })
}

func startGraceAgent(t *testing.T, f *taskDispatcher, e exec.Executor, grace time.Duration) {
	t.Helper()
	a := newTestAgent([]string{serve(t, f)}, nil)
	a.cfg.Executor = e
	a.cfg.EndpointGrace = grace
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "a session opens", func() bool { return f.sessionCount() == 1 })
}
