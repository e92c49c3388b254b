package sim

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/api"
)

func task(id string, env ...string) *api.Task {
	return &api.Task{Id: id, Spec: &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox", Env: env}}}
}

func newExecutor(t *testing.T, cfg Config) *Executor {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func controllerOf(t *testing.T, e *Executor, task *api.Task) exec.Controller {
	t.Helper()
	c, err := e.Controller(task)
	if err != nil {
		t.Fatalf("Controller: %v", err)
	}
	return c
}

// waitCtx bounds a Wait that must return; tests wait for events, never for
// time to pass.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stillRunning reports whether c's workload has not exited, without waiting.
func stillRunning(c exec.Controller) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return errors.Is(c.Wait(ctx), context.Canceled)
}

// A task's life, from the executor's settings and the task's env.
func TestTaskLife(t *testing.T) {
	tests := []struct {
		name         string
		cfg          Config
		env          []string
		wantPrepare  string // error substring
		wantStartErr bool
		runsUntilAsk bool // runs until shut down
		wantExit     int  // when it exits by itself; -1: cleanly
	}{
		{name: "runs until stopped", runsUntilAsk: true},
		{name: "runs for a while, exits cleanly", env: []string{"SIM_RUN_FOR=1ms"}, wantExit: -1},
		{name: "exits with a code", env: []string{"SIM_RUN_FOR=1ms", "SIM_EXIT_CODE=3"}, wantExit: 3},
		{name: "executor-wide run time and code", cfg: Config{RunFor: time.Millisecond, ExitCode: 2}, wantExit: 2},
		{name: "start delay", env: []string{"SIM_START_DELAY=5ms"}, runsUntilAsk: true},
		{name: "fails at start", env: []string{"SIM_FAIL_START=1"}, wantStartErr: true},
		{name: "failure rate 1", cfg: Config{FailureRate: 1}, wantStartErr: true},
		{name: "env overrides the failure rate", cfg: Config{FailureRate: 1}, env: []string{"SIM_FAIL_START=0"}, runsUntilAsk: true},
		{name: "bad start delay", env: []string{"SIM_START_DELAY=soon"}, wantPrepare: "SIM_START_DELAY"},
		{name: "negative run time", env: []string{"SIM_RUN_FOR=-1s"}, wantPrepare: "SIM_RUN_FOR"},
		{name: "bad exit code", env: []string{"SIM_EXIT_CODE=x"}, wantPrepare: "SIM_EXIT_CODE"},
		{name: "bad failure flag", env: []string{"SIM_FAIL_START=maybe"}, wantPrepare: "SIM_FAIL_START"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newExecutor(t, tc.cfg)
			c := controllerOf(t, e, task("t1", tc.env...))
			err := c.Prepare(t.Context())
			if tc.wantPrepare != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantPrepare) {
					t.Fatalf("Prepare = %v, want an error naming %s", err, tc.wantPrepare)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			err = c.Start(waitCtx(t))
			if tc.wantStartErr {
				if err == nil {
					t.Fatal("Start succeeded, want a failure")
				}
				var exit *exec.ExitError
				if werr := c.Wait(waitCtx(t)); !errors.As(werr, &exit) || exit.Cause == nil {
					t.Errorf("Wait after a failed start = %v, want an ExitError with its cause", werr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if tc.runsUntilAsk {
				if !stillRunning(c) {
					t.Fatal("the task exited by itself")
				}
				if err := c.Shutdown(t.Context()); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				if err := c.Wait(waitCtx(t)); err != nil {
					t.Errorf("Wait after Shutdown = %v, want nil", err)
				}
				return
			}
			err = c.Wait(waitCtx(t))
			var exit *exec.ExitError
			switch {
			case tc.wantExit == -1 && err != nil:
				t.Errorf("Wait = %v, want a clean exit", err)
			case tc.wantExit >= 0 && (!errors.As(err, &exit) || exit.Code != tc.wantExit):
				t.Errorf("Wait = %v, want exit code %d", err, tc.wantExit)
			}
		})
	}
}

// A second controller of the same task (a new agent adopting it) controls
// the running workload; repeated steps change nothing.
func TestAdoptionAndIdempotence(t *testing.T) {
	e := newExecutor(t, Config{})
	first := controllerOf(t, e, task("t1"))
	for range 2 {
		if err := first.Prepare(t.Context()); err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		if err := first.Start(t.Context()); err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
	adopted := controllerOf(t, e, task("t1"))
	if err := adopted.Prepare(t.Context()); err != nil {
		t.Fatalf("Prepare of the adopted task: %v", err)
	}
	if err := adopted.Start(t.Context()); err != nil {
		t.Fatalf("Start of the adopted task: %v", err)
	}
	if !stillRunning(adopted) {
		t.Fatal("adopting the task restarted or stopped it")
	}
	waited := make(chan error, 1)
	go func() { waited <- adopted.Wait(waitCtx(t)) }()
	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Errorf("the adopted controller's Wait = %v, want nil", err)
	}
	// Start does nothing to a workload that ran.
	if err := adopted.Start(t.Context()); err != nil || stillRunning(adopted) {
		t.Errorf("Start after the exit = %v, running %v; want nil and still exited", err, stillRunning(adopted))
	}
}

func TestMissingWorkload(t *testing.T) {
	e := newExecutor(t, Config{})
	c := controllerOf(t, e, task("t1"))
	if err := c.Start(t.Context()); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("Start before Prepare = %v, want ErrNotFound", err)
	}
	if err := c.Wait(t.Context()); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("Wait before Prepare = %v, want ErrNotFound", err)
	}
	// Cleanup of an orphan knows only its ID, and tolerates absence.
	orphan := controllerOf(t, e, &api.Task{Id: "gone"})
	if err := orphan.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown of nothing: %v", err)
	}
	if err := orphan.Remove(t.Context()); err != nil {
		t.Errorf("Remove of nothing: %v", err)
	}
	if _, err := e.Controller(&api.Task{}); err == nil {
		t.Error("a controller of a task without an ID")
	}
}

func TestTasksAndRemove(t *testing.T) {
	e := newExecutor(t, Config{})
	for _, id := range []string{"b", "a", "c"} {
		c := controllerOf(t, e, task(id))
		if err := c.Prepare(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := e.Tasks(t.Context())
	if !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Fatalf("Tasks = %v", ids)
	}
	// Remove by ID alone, as an agent cleaning up orphans does.
	b := controllerOf(t, e, &api.Task{Id: "b"})
	if err := b.Remove(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.Tasks(t.Context()); !slices.Equal(ids, []string{"a", "c"}) {
		t.Fatalf("Tasks after removing b = %v", ids)
	}
	if err := b.Wait(t.Context()); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("Wait after Remove = %v, want ErrNotFound", err)
	}
}

// A start interrupted by its ctx goes on; the next Start waits for it. A
// shutdown during the start makes the start fail.
func TestStartDelay(t *testing.T) {
	e := newExecutor(t, Config{StartDelay: time.Hour})
	c := controllerOf(t, e, task("t1", "SIM_START_DELAY=2ms"))
	if err := c.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Start(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with an ended ctx = %v", err)
	}
	if err := c.Start(waitCtx(t)); err != nil {
		t.Fatalf("Start: %v", err)
	}

	slow := controllerOf(t, e, task("t2")) // the executor's hour
	if err := slow.Prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- slow.Start(waitCtx(t)) }()
	for {
		e.mu.Lock()
		p := e.workloads["t2"].phase
		e.mu.Unlock()
		if p == starting {
			break
		}
		runtime.Gosched()
	}
	if err := slow.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err == nil {
		t.Error("a start cut short by Shutdown succeeded")
	}
}

func TestDescribe(t *testing.T) {
	e := newExecutor(t, Config{})
	d, _ := e.Describe(t.Context())
	if d.Executor != Name || d.Resources.GetNanoCpus() != int64(runtime.NumCPU())*1e9 {
		t.Errorf("default description %v, want executor sim with the host's CPUs", d)
	}
	e = newExecutor(t, Config{NanoCPUs: 2500e6, MemoryBytes: 4 << 30, EngineLabels: map[string]string{"zone": "a"}})
	d, _ = e.Describe(t.Context())
	if d.Resources.GetNanoCpus() != 2500e6 || d.Resources.GetMemoryBytes() != 4<<30 || d.EngineLabels["zone"] != "a" {
		t.Errorf("description %v, want the configured resources and labels", d)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{StartDelay: -1}, {RunFor: -1}, {FailureRate: 1.5}, {FailureRate: -0.1}, {NanoCPUs: -1}, {MemoryBytes: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// Many tasks with run times share one timeline and all exit.
func TestManyTasksExit(t *testing.T) {
	e := newExecutor(t, Config{})
	var wg sync.WaitGroup
	for i := range 1000 {
		c := controllerOf(t, e, task(fmt.Sprint(i), fmt.Sprintf("SIM_RUN_FOR=%dus", 1+i%50), fmt.Sprintf("SIM_START_DELAY=%dus", i%7)))
		wg.Go(func() {
			if err := c.Prepare(t.Context()); err != nil {
				t.Error(err)
				return
			}
			if err := c.Start(waitCtx(t)); err != nil {
				t.Error(err)
				return
			}
			if err := c.Wait(waitCtx(t)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestTimelineOrder(t *testing.T) {
	tl := newTimeline()
	var mu sync.Mutex
	var got []int
	done := make(chan struct{})
	for _, d := range []int{30, 10, 20} {
		tl.after(time.Duration(d)*time.Millisecond, func() {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, d)
			if len(got) == 3 {
				close(done)
			}
		})
	}
	<-done
	if !slices.Equal(got, []int{10, 20, 30}) {
		t.Errorf("fired in order %v", got)
	}
}
