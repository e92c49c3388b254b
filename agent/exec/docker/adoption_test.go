package docker

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/moby/moby/client"

	"github.com/shoal/shoal/agent/exec"
)

// TestAdoption: a second executor of the same node (an agent restart)
// finds the running workload, checks its attachments once, controls it,
// and creates nothing new.
func TestAdoption(t *testing.T) {
	first := &fakeNetworks{addr: "198.18.0.9/32"}
	e1 := newTestExecutor(t, first, PullMissing)
	task := echoTask(2)
	startTask(t, e1, task)
	ctx := context.Background()

	second := &fakeNetworks{}
	e2 := sameNode(t, e1, second)
	if ids, err := e2.Tasks(ctx); err != nil || !slices.Equal(ids, []string{task.Id}) {
		t.Fatalf("Tasks() of the new executor = %v, %v; want [%s]", ids, err, task.Id)
	}
	ctl := mustController(t, e2, task)
	for i := range 2 {
		if err := ctl.Prepare(ctx); err != nil {
			t.Fatalf("Prepare #%d of the adopted task: %v", i+1, err)
		}
		if err := ctl.Start(ctx); err != nil {
			t.Fatalf("Start #%d of the adopted task: %v", i+1, err)
		}
	}
	if n := len(nodeContainers(t, e1.cfg.NodeID)); n != 2 {
		t.Errorf("%d containers after adoption, want 2", n)
	}
	checks := second.callsOf("check")
	if !hasOps(second.ops(), "check") || checks[0].TaskID != task.Id || checks[0].NetNS == "" {
		t.Errorf("Networks calls of the new executor %+v, want one check of the running sandbox", second.calls)
	}
	// The workload still answers from its address.
	sb := inspect(t, containerName(task, e1.cfg.NodeID)+sandboxSuffix)
	if got := echoIdentity(t, e2.sandboxOf(&sb).NetNS); got.IP != "198.18.0.9" || got.Task != task.Id {
		t.Errorf("the adopted task answers %+v", got)
	}

	waited := waitAsync(ctl)
	if err := ctl.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-waited; err != nil {
		t.Errorf("Wait: %v, want nil", err)
	}
	if err := ctl.Remove(ctx); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if left := nodeContainers(t, e1.cfg.NodeID); len(left) != 0 {
		t.Errorf("%d containers left after Remove", len(left))
	}
	if !hasOps(second.ops(), "check", "detach", "detach") {
		t.Errorf("Networks calls of the new executor %v, want check, detach, detach", second.ops())
	}
}

// TestAdoptionFailures: an adopted running task fails, and is stopped,
// when its sandbox died while no agent watched, or its attachments fail
// the check.
func TestAdoptionFailures(t *testing.T) {
	tests := []struct {
		name     string
		sabotage func(t *testing.T, sandbox string, nets *fakeNetworks)
		want     error
	}{
		{"sandbox died", func(t *testing.T, sandbox string, _ *fakeNetworks) {
			if _, err := engine.ContainerKill(context.Background(), sandbox, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
				t.Fatal(err)
			}
			wait := engine.ContainerWait(context.Background(), sandbox, client.ContainerWaitOptions{})
			select {
			case <-wait.Result:
			case err := <-wait.Error:
				t.Fatal(err)
			}
		}, ErrSandboxGone},
		{"check fails", func(_ *testing.T, _ string, nets *fakeNetworks) {
			nets.set(nil, errCheck, nil)
		}, errCheck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e1 := newTestExecutor(t, &fakeNetworks{}, PullMissing)
			task := echoTask(1)
			startTask(t, e1, task)
			second := &fakeNetworks{}
			tt.sabotage(t, containerName(task, e1.cfg.NodeID)+sandboxSuffix, second)

			e2 := sameNode(t, e1, second)
			ctl := mustController(t, e2, task)
			err := ctl.Wait(context.Background())
			var exit *exec.ExitError
			if !errors.As(err, &exit) || !errors.Is(err, tt.want) {
				t.Fatalf("Wait: %v, want an ExitError with %v", err, tt.want)
			}
			if inspect(t, containerName(task, e1.cfg.NodeID)).State.Running {
				t.Error("the failed task's container still runs")
			}
			if got := second.callsOf("detach"); len(got) != 1 {
				t.Errorf("Networks calls %v, want the failed task detached", second.ops())
			}
			if err := ctl.Remove(context.Background()); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if left := nodeContainers(t, e1.cfg.NodeID); len(left) != 0 {
				t.Errorf("%d containers left after Remove", len(left))
			}
		})
	}
}

var errCheck = errors.New("the address is gone from eth0")

// TestNodesShareAnEngine: executors of different nodes on one engine see
// only their own tasks.
func TestNodesShareAnEngine(t *testing.T) {
	a := newTestExecutor(t, &fakeNetworks{}, PullMissing)
	b := newTestExecutor(t, &fakeNetworks{}, PullMissing)
	task := echoTask(1)
	if err := mustController(t, a, task).Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ids, err := b.Tasks(context.Background()); err != nil || len(ids) != 0 {
		t.Errorf("the other node's Tasks() = %v, %v; want none", ids, err)
	}
	if err := mustController(t, b, task).Wait(context.Background()); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("the other node's Wait: %v, want ErrNotFound", err)
	}
}
