package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/exec/sim"
	"github.com/shoal/shoal/api"
)

// The networks an assignments message carries reach OnNetworks before its tasks run.
func TestAgentHandsOnNetworks(t *testing.T) {
	d := newTaskDispatcher()
	addr := serve(t, d)
	e := newCountingExecutor(t, sim.Config{})
	var (
		mu   sync.Mutex
		seen []string
		ran  int // tasks prepared when the networks arrived
	)
	a := newTestAgent([]string{addr}, nil)
	a.cfg.Executor = e
	a.cfg.OnNetworks = func(nets []*api.Network, _ bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range nets {
			seen = append(seen, n.Id)
		}
		ran = e.callCount("t1", "Prepare")
	}
	runAgent(t, a)
	sid := waitSession(t, d, 1)
	msg := complete(assignedTask("t1"))
	msg.Networks = []*api.Network{{Id: "net1"}, {Id: "net2"}}
	d.send(msg)
	d.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, sid)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "net1" || seen[1] != "net2" || ran != 0 {
		t.Fatalf("OnNetworks saw %v with %d prepares before; want [net1 net2] before the task", seen, ran)
	}
}

// The node's description says whether its network plugins are ready, and a change opens a new
// session that reports it.
func TestAgentReportsNetworkStatus(t *testing.T) {
	d := newTaskDispatcher()
	addr := serve(t, d)
	var notReady atomic.Pointer[string]
	why := "shoal-bridge: cannot run iptables"
	notReady.Store(&why)
	a := newTestAgent([]string{addr}, nil)
	a.cfg.NetworkStatus = func(context.Context) error {
		if w := notReady.Load(); w != nil {
			return errors.New(*w)
		}
		return nil
	}
	a.cfg.NetworkStatusPeriod = 20 * time.Millisecond
	runAgent(t, a)
	waitSession(t, d, 1)
	if got := d.desc().GetNetworkNotReady(); got != why {
		t.Fatalf("first session's description says network_not_ready %q, want %q", got, why)
	}
	notReady.Store(nil)
	waitSession(t, d, 2)
	if got := d.desc().GetNetworkNotReady(); got != "" {
		t.Fatalf("after the plugins recovered the description says %q, want ready", got)
	}
}

// After a resync the agent lets a collecting executor release what no workload holds.
func TestAgentCollectsGarbageAfterResync(t *testing.T) {
	d := newTaskDispatcher()
	addr := serve(t, d)
	e := &collectingExecutor{countingExecutor: newCountingExecutor(t, sim.Config{})}
	stop := startAgent(t, addr, e)
	defer stop()
	sid := waitSession(t, d, 1)
	d.send(complete(assignedTask("t1")))
	d.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, sid)
	eventually(t, "garbage collected after the COMPLETE message", func() bool { return e.collected.Load() >= 1 })
}

type collectingExecutor struct {
	*countingExecutor
	collected atomic.Int32
}

func (c *collectingExecutor) CollectGarbage(context.Context) error {
	c.collected.Add(1)
	return nil
}

// runAgent runs a until the test ends.
func runAgent(t *testing.T, a *Agent) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitSession waits until the dispatcher has had n sessions and returns the current one's ID.
func waitSession(t *testing.T, d *taskDispatcher, n int) string {
	t.Helper()
	eventually(t, "session opened", func() bool { return d.sessionCount() >= n })
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current
}

func (f *taskDispatcher) desc() *api.NodeDescription {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.description
}

// A removal that fails is tried again until it succeeds: what the workload holds is not left
// until the next resync.
func TestAgentRetriesAFailedRemove(t *testing.T) {
	d := newTaskDispatcher()
	addr := serve(t, d)
	e := &flakyRemoveExecutor{countingExecutor: newCountingExecutor(t, sim.Config{})}
	e.failures.Store(1)
	startAgent(t, addr, e)
	sid := waitSession(t, d, 1)
	d.send(complete(assignedTask("t1")))
	d.waitState(t, "t1", api.TaskState_TASK_STATE_RUNNING, sid)
	d.send(incremental(nil, "t1"))
	eventually(t, "the workload removed on the second try", func() bool {
		return e.callCount("t1", "Remove") >= 2 && !slices.Contains(e.taskIDs(t), "t1")
	})
}

type flakyRemoveExecutor struct {
	*countingExecutor
	failures atomic.Int32 // Removes still to fail
}

func (f *flakyRemoveExecutor) Controller(t *api.Task) (exec.Controller, error) {
	ctl, err := f.countingExecutor.Controller(t)
	if err != nil {
		return nil, err
	}
	return &flakyRemoveController{Controller: ctl, e: f, task: t.Id}, nil
}

type flakyRemoveController struct {
	exec.Controller
	e    *flakyRemoveExecutor
	task string
}

func (c *flakyRemoveController) Remove(ctx context.Context) error {
	if c.e.failures.Add(-1) >= 0 {
		c.e.count(c.task, "Remove") // the workload stays: it failed
		return errors.New("a plugin would not delete an attachment")
	}
	return c.Controller.Remove(ctx)
}

// Endpoint views reach OnEndpoints in order: a COMPLETE message's whole view, then changes.
func TestAgentHandsOnEndpoints(t *testing.T) {
	d := newTaskDispatcher()
	addr := serve(t, d)
	type call struct {
		complete bool
		set      []string
		removed  []string
	}
	calls := make(chan call, 4)
	a := newTestAgent([]string{addr}, nil)
	a.cfg.Executor = newCountingExecutor(t, sim.Config{})
	a.cfg.OnEndpoints = func(complete bool, set []*api.Endpoint, removed []*api.EndpointKey) {
		c := call{complete: complete}
		for _, ep := range set {
			c.set = append(c.set, ep.TaskId)
		}
		for _, k := range removed {
			c.removed = append(c.removed, k.TaskId)
		}
		calls <- c
	}
	runAgent(t, a)
	waitSession(t, d, 1)
	first := complete()
	first.Endpoints = []*api.Endpoint{{NetworkId: "net1", TaskId: "a"}, {NetworkId: "net1", TaskId: "b"}}
	d.send(first)
	d.send(&api.AssignmentsMessage{Type: api.AssignmentsMessage_TYPE_INCREMENTAL,
		Endpoints: []*api.Endpoint{{NetworkId: "net1", TaskId: "c"}}, RemovedEndpoints: []*api.EndpointKey{{NetworkId: "net1", TaskId: "a"}}})
	want := []call{{complete: true, set: []string{"a", "b"}}, {set: []string{"c"}, removed: []string{"a"}}}
	for i, w := range want {
		select {
		case got := <-calls:
			if got.complete != w.complete || !slices.Equal(got.set, w.set) || !slices.Equal(got.removed, w.removed) {
				t.Fatalf("call %d: %+v, want %+v", i+1, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d never came", i+1)
		}
	}
}
