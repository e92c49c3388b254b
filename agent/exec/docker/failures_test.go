package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/netns"
	"github.com/shoal/shoal/api"
)

// TestExitCodes runs tasks that exit by themselves: Wait reports the exit
// code, after the network is released.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int // 0: Wait returns nil
	}{
		{[]string{"-exit", "0"}, 0},
		{[]string{"-exit", "3"}, 3},
		{[]string{"-exit", "255"}, 255},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			nets := &fakeNetworks{}
			e := newTestExecutor(t, nets, PullMissing)
			task := echoTask(1, tt.args...)
			ctl := startTask(t, e, task)
			err := ctl.Wait(context.Background())
			var exit *exec.ExitError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Errorf("Wait: %v, want nil", err)
			case tt.wantCode != 0 && (!errors.As(err, &exit) || exit.Code != tt.wantCode):
				t.Errorf("Wait: %v, want exit code %d", err, tt.wantCode)
			}
			if !hasOps(nets.ops(), "attach", "detach") {
				t.Errorf("Networks calls %v, want attach, detach (released before Wait returned)", nets.ops())
			}
			if sb := inspect(t, containerName(task, e.cfg.NodeID)+sandboxSuffix); sb.State.Running {
				t.Error("the sandbox still runs after the task exited")
			}
			// Wait again: the same answer, and no second Detach.
			if again := ctl.Wait(context.Background()); fmt.Sprint(again) != fmt.Sprint(err) {
				t.Errorf("second Wait: %v, want %v", again, err)
			}
			if n := len(nets.callsOf("detach")); n != 1 {
				t.Errorf("%d Detach calls after two Waits, want 1", n)
			}
		})
	}
}

// TestOutOfMemory runs a task that allocates past its memory limit. It
// allocates a second after its start: the engine watches a container's
// memory cgroup for OOM kills only from just after the start (containerd's
// runc shim adds it to its OOM monitor once the start has returned), so a
// kill before that comes without the engine's mark (see oomMarkWait). Without
// the wait it failed 1 run in 40 with eight busy loops beside it.
func TestOutOfMemory(t *testing.T) {
	e := newTestExecutor(t, &fakeNetworks{}, PullMissing)
	task := echoTask(1, "-alloc", "256", "-alloc-after", "1s")
	task.Spec.Resources = &api.ResourceRequirements{Limits: &api.Resources{MemoryBytes: 32 << 20}}
	ctl := startTask(t, e, task)
	err := ctl.Wait(context.Background())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Code != 137 || !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("Wait: %v, want exit code 137 with cause %q", err, ErrOutOfMemory)
	}
	if err.Error() != "exit code 137: killed: out of memory" {
		t.Errorf("Wait's error says %q", err)
	}
}

// TestStopGracePeriod stops a task that ignores SIGTERM: the engine waits
// the grace period, then kills it. A task that heeds SIGTERM exits 0.
func TestStopGracePeriod(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"heeds SIGTERM", nil, 0},
		{"ignores SIGTERM", []string{"-ignore-sigterm"}, 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestExecutor(t, &fakeNetworks{}, PullMissing)
			task := echoTask(1, tt.args...)
			const grace = 2 * time.Second
			task.Spec.Container.StopGracePeriod = durationpb.New(grace)
			ctl := startTask(t, e, task)
			// shoal-echo handles signals once it serves.
			echoIdentity(t, e.sandboxOf(ptr(inspect(t, containerName(task, e.cfg.NodeID)+sandboxSuffix))).NetNS)
			stopping := time.Now()
			if err := ctl.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			err := ctl.Wait(context.Background())
			var exit *exec.ExitError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("Wait: %v, want nil", err)
			case tt.wantCode != 0 && (!errors.As(err, &exit) || exit.Code != tt.wantCode):
				t.Fatalf("Wait: %v, want exit code %d", err, tt.wantCode)
			}
			if tt.wantCode == 137 {
				// A lower bound only: the kill came no sooner than the
				// grace period allows.
				finished, err := time.Parse(time.RFC3339Nano, inspect(t, containerName(task, e.cfg.NodeID)).State.FinishedAt)
				if err != nil {
					t.Fatal(err)
				}
				if d := finished.Sub(stopping); d < grace-100*time.Millisecond {
					t.Errorf("killed %s after the stop began, before the grace period of %s", d, grace)
				}
			}
		})
	}
}

// TestStartFailure starts a container whose command does not exist: Start
// fails and releases the network.
func TestStartFailure(t *testing.T) {
	nets := &fakeNetworks{}
	e := newTestExecutor(t, nets, PullMissing)
	task := echoTask(1)
	task.Spec.Container.Command = []string{"/no/such/binary"}
	ctl := mustController(t, e, task)
	ctx := context.Background()
	if err := ctl.Prepare(ctx); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	err := ctl.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "start container") {
		t.Fatalf("Start: %v, want a start error", err)
	}
	if !hasOps(nets.ops(), "attach", "detach") {
		t.Errorf("Networks calls %v, want attach, detach", nets.ops())
	}
	if err := ctl.Remove(ctx); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if left := nodeContainers(t, e.cfg.NodeID); len(left) != 0 {
		t.Errorf("%d containers left after Remove", len(left))
	}
}

// TestSandboxDies kills a running task's sandbox while Wait waits: the
// task fails with ErrSandboxGone and its container is stopped.
func TestSandboxDies(t *testing.T) {
	nets := &fakeNetworks{}
	e := newTestExecutor(t, nets, PullMissing)
	task := echoTask(1)
	ctl := startTask(t, e, task)
	waited := waitAsync(ctl)
	sbName := containerName(task, e.cfg.NodeID) + sandboxSuffix
	if _, err := engine.ContainerKill(context.Background(), sbName, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("kill the sandbox: %v", err)
	}
	err := <-waited
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !errors.Is(err, ErrSandboxGone) {
		t.Fatalf("Wait: %v, want an ExitError with ErrSandboxGone", err)
	}
	if inspect(t, containerName(task, e.cfg.NodeID)).State.Running {
		t.Error("the task's container runs on after its sandbox died")
	}
	if !hasOps(nets.ops(), "attach", "detach") {
		t.Errorf("Networks calls %v, want attach, detach", nets.ops())
	}
}

// TestMissingImage prepares tasks whose image is not on the node and
// cannot be pulled (no registry answers): Prepare fails with a clear
// error and leaves nothing.
func TestMissingImage(t *testing.T) {
	for _, pull := range []PullPolicy{PullMissing, PullNever, PullAlways} {
		t.Run(string(pull), func(t *testing.T) {
			nets := &fakeNetworks{}
			e := newTestExecutor(t, nets, pull)
			task := echoTask(1)
			task.Spec.Container.Image = "nosuch-" + randomSuffix() + ":1"
			err := mustController(t, e, task).Prepare(context.Background())
			var imgErr *ImageError
			if !errors.As(err, &imgErr) {
				t.Fatalf("Prepare: %v, want an *ImageError", err)
			}
			want := fmt.Sprintf("image %q is not on this node and cannot be pulled: ", task.Spec.Container.Image)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Prepare: %q, want it to say %q", err, want)
			}
			if pull == PullNever && !errors.Is(err, errPullNever) {
				t.Errorf("Prepare under never: %v, want the pull policy as the reason", err)
			}
			if left := nodeContainers(t, e.cfg.NodeID); len(left) != 0 {
				t.Errorf("%d containers left", len(left))
			}
			if ops := nets.ops(); len(ops) != 0 {
				t.Errorf("Networks calls %v, want none", ops)
			}
		})
	}
}

// TestPullAlwaysUsesTheNodesImage: under PullAlways, a failed pull of an
// image the node has is not an error.
func TestPullAlwaysUsesTheNodesImage(t *testing.T) {
	e := newTestExecutor(t, &fakeNetworks{}, PullAlways)
	if err := mustController(t, e, echoTask(1)).Prepare(context.Background()); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
}

// TestInvalidMount prepares a task whose bind mount's source is missing:
// the error names the mount, and nothing is left.
func TestInvalidMount(t *testing.T) {
	nets := &fakeNetworks{}
	e := newTestExecutor(t, nets, PullMissing)
	task := echoTask(1)
	missing := t.TempDir() + "/nope"
	task.Spec.Container.Mounts = []*api.Mount{
		{Type: api.Mount_TYPE_TMPFS, Target: "/tmp"},
		{Type: api.Mount_TYPE_BIND, Source: missing, Target: "/data"},
	}
	err := mustController(t, e, task).Prepare(context.Background())
	var me *MountError
	if !errors.As(err, &me) || me.Index != 1 {
		t.Fatalf("Prepare: %v, want a MountError for mount 2", err)
	}
	want := fmt.Sprintf(`mount 2 (bind %q → "/data"): the source does not exist on this node`, missing)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Prepare: %q, want it to say %q", err, want)
	}
	if left := nodeContainers(t, e.cfg.NodeID); len(left) != 0 {
		t.Errorf("%d containers left", len(left))
	}
	if ops := nets.ops(); len(ops) != 0 {
		t.Errorf("Networks calls %v, want none", ops)
	}
}

// TestPrepareRollback fails Prepare after the sandbox is attached — the
// engine refuses the task's container, or Attach fails — and finds
// everything undone.
func TestPrepareRollback(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*api.Task, *fakeNetworks)
		wantError string
	}{
		{"engine refuses the container", func(task *api.Task, _ *fakeNetworks) {
			// Below the engine's minimum memory limit.
			task.Spec.Resources = &api.ResourceRequirements{Limits: &api.Resources{MemoryBytes: 1 << 20}}
		}, "create the task's container"},
		{"attach fails", func(_ *api.Task, nets *fakeNetworks) {
			nets.set(errors.New("no address left"), nil, nil)
		}, "attach the task's networks: no address left"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nets := &fakeNetworks{}
			e := newTestExecutor(t, nets, PullMissing)
			task := echoTask(1)
			tt.setup(task, nets)
			err := mustController(t, e, task).Prepare(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Fatalf("Prepare: %v, want %q", err, tt.wantError)
			}
			if left := nodeContainers(t, e.cfg.NodeID); len(left) != 0 {
				t.Errorf("%d containers left", len(left))
			}
			attaches, detaches := nets.callsOf("attach"), nets.callsOf("detach")
			if len(attaches) != 1 || len(detaches) != 1 || detaches[0].SandboxID != attaches[0].SandboxID {
				t.Errorf("Networks calls %+v, want an attach and a detach of the same sandbox", nets.calls)
			}
			if pins, err := netns.List(e.cfg.NetNSDir); err != nil || len(pins) != 0 {
				t.Errorf("netns pins left: %v (%v)", pins, err)
			}
		})
	}
}

// TestSandboxCannotJoin: a sandbox whose process cannot join the pinned
// netns fails Prepare with what the process said; nothing is left.
func TestSandboxCannotJoin(t *testing.T) {
	needEngine(t)
	nets := &fakeNetworks{}
	nodeID := "test-node-" + randomSuffix()
	e, err := New(Config{Client: engine, NodeID: nodeID, Networks: nets, PauseBinary: badPauseBin, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		removeNodeContainers(t, nodeID)
		removePins(t, e.cfg.NetNSDir)
		if ref, err := defaultPauseImage(pauseRecipe(badPauseBin)); err == nil {
			_, _ = engine.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true})
		}
	})
	err = mustController(t, e, echoTask(1)).Prepare(context.Background())
	want := `the sandbox stopped as it started (exited, exit code 1): "pause: join the netns at /netns: invalid argument"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Prepare: %v, want %q", err, want)
	}
	if left := nodeContainers(t, nodeID); len(left) != 0 {
		t.Errorf("%d containers left", len(left))
	}
	if pins, err := netns.List(e.cfg.NetNSDir); err != nil || len(pins) != 0 {
		t.Errorf("netns pins left: %v (%v)", pins, err)
	}
}

// TestRollbackKeepsAnUndetachedSandbox: when the rollback's Detach fails,
// the sandbox stays for the next Prepare, which detaches and replaces it.
func TestRollbackKeepsAnUndetachedSandbox(t *testing.T) {
	nets := &fakeNetworks{}
	e := newTestExecutor(t, nets, PullMissing)
	task := echoTask(1)
	nets.set(errors.New("attach broke"), nil, errors.New("detach broke"))
	ctl := mustController(t, e, task)
	if err := ctl.Prepare(context.Background()); err == nil {
		t.Fatal("Prepare with a failing Attach: no error")
	}
	left := nodeContainers(t, e.cfg.NodeID)
	if len(left) != 1 || left[0].Labels[LabelRole] != RoleSandbox {
		t.Fatalf("containers left %v, want the sandbox alone", left)
	}
	oldSandbox := left[0].ID

	nets.set(nil, nil, nil)
	if err := ctl.Prepare(context.Background()); err != nil {
		t.Fatalf("second Prepare: %v", err)
	}
	detaches := nets.callsOf("detach")
	if len(detaches) != 2 || detaches[1].SandboxID != oldSandbox {
		t.Errorf("Detach calls %+v, want the old sandbox %s detached again", detaches, oldSandbox)
	}
	if _, err := engine.ContainerInspect(context.Background(), oldSandbox, client.ContainerInspectOptions{}); err == nil {
		t.Error("the old sandbox is still there")
	}
	if n := len(nodeContainers(t, e.cfg.NodeID)); n != 2 {
		t.Errorf("%d containers after the second Prepare, want 2", n)
	}
}

func ptr[T any](v T) *T { return &v }

// A task that ends while its attachments cannot be deleted still takes its address off the
// wire before its end is reported: the sandbox is stopped (its namespace goes with it) and kept,
// and Remove detaches it again.
func TestFailedDetachStopsTheSandbox(t *testing.T) {
	nets := &fakeNetworks{}
	e := newTestExecutor(t, nets, PullMissing)
	task := echoTask(1, "-exit", "0")
	nets.set(nil, nil, errors.New("a chained plugin's DEL failed"))
	ctl := startTask(t, e, task)
	if err := ctl.Wait(context.Background()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	sb := inspect(t, containerName(task, e.cfg.NodeID)+sandboxSuffix)
	if sb.State.Running {
		t.Fatal("the sandbox still runs, holding the task's address, after the task ended and its detach failed")
	}
	nets.set(nil, nil, nil)
	if err := ctl.Remove(context.Background()); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if n := len(nets.callsOf("detach")); n < 2 {
		t.Errorf("%d Detach calls, want the failed one and Remove's", n)
	}
	if left := nodeContainers(t, e.cfg.NodeID); len(left) != 0 {
		t.Errorf("%d containers left after Remove", len(left))
	}
}
