package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/netns"
	"github.com/shoal/shoal/api"
)

// TestLifecycle takes one task through prepare, start, shutdown, wait and
// remove, checking what the engine holds at each step.
func TestLifecycle(t *testing.T) {
	nets := &fakeNetworks{addr: "198.18.0.7/32"}
	e := newTestExecutor(t, nets, PullMissing)
	ctx := context.Background()
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := echoTask(3, "-tcp", ":9000")
	spec := task.Spec.Container
	spec.Env = []string{"GREETING=hello", "SHOAL_SLOT=forged"}
	spec.Dir = "/tmp"
	spec.User = "1000:1000"
	spec.Labels = map[string]string{"team": "net"}
	spec.StopGracePeriod = durationpb.New(3 * time.Second)
	spec.Mounts = []*api.Mount{
		{Type: api.Mount_TYPE_BIND, Source: hostDir, Target: "/host", ReadOnly: true},
		{Type: api.Mount_TYPE_TMPFS, Target: "/tmp"},
		{Type: api.Mount_TYPE_VOLUME, Target: "/data"},
	}
	task.Spec.Resources = &api.ResourceRequirements{Limits: &api.Resources{NanoCpus: 5e8, MemoryBytes: 64 << 20}}
	ctl := mustController(t, e, task)

	// Prepare: a sandbox, attached, and the task's container, not started.
	if err := ctl.Prepare(ctx); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	node := e.cfg.NodeID
	slotName := fmt.Sprintf("%s.3", task.ServiceName)
	ctrName := fmt.Sprintf("%s.3.%s", task.ServiceName, task.Id)
	sb := inspect(t, ctrName+"-sandbox")
	ctr := inspect(t, ctrName)
	pauseRef, _ := defaultPauseRef()
	checkSandbox(t, sb, task, node, slotName, pauseRef)
	checkTaskContainer(t, ctr, sb.ID, task, node, hostDir)
	if got := ctr.State.Status; got != container.StateCreated {
		t.Errorf("task container after Prepare: %s, want created", got)
	}
	attaches := nets.callsOf("attach")
	wantNetNS := e.pinPath(task.Id)
	if same, err := netns.Same(fmt.Sprintf("/proc/%d/ns/net", sb.State.Pid), wantNetNS); err != nil || !same {
		t.Errorf("the sandbox's process is not in the pinned netns %s (%v)", wantNetNS, err)
	}
	if len(attaches) != 1 || attaches[0].SandboxID != sb.ID || attaches[0].NetNS != wantNetNS || attaches[0].TaskID != task.Id {
		t.Errorf("Attach calls %+v, want one for sandbox %s in %s", attaches, sb.ID, wantNetNS)
	}

	// Prepare again reuses the workload.
	if err := ctl.Prepare(ctx); err != nil {
		t.Fatalf("second Prepare: %v", err)
	}
	if n := len(nodeContainers(t, node)); n != 2 {
		t.Errorf("%d containers after a second Prepare, want 2", n)
	}
	if !hasOps(nets.ops(), "attach") {
		t.Errorf("Networks calls %v after a second Prepare, want one attach", nets.ops())
	}
	if ids, err := e.Tasks(ctx); err != nil || !slices.Equal(ids, []string{task.Id}) {
		t.Errorf("Tasks() = %v, %v; want [%s]", ids, err, task.Id)
	}

	// Start, twice; the task runs in the sandbox's netns.
	for i := range 2 {
		if err := ctl.Start(ctx); err != nil {
			t.Fatalf("Start #%d: %v", i+1, err)
		}
	}
	if !inspect(t, ctr.ID).State.Running {
		t.Fatal("the task's container does not run after Start")
	}
	want := identity{Hostname: slotName, Slot: "3", IP: "198.18.0.7", Task: task.Id, Service: task.ServiceName}
	if got := echoIdentity(t, wantNetNS); got != want {
		t.Errorf("shoal-echo in the sandbox says %+v, want %+v", got, want)
	}

	// Shutdown: shoal-echo exits 0 on SIGTERM; the network is released
	// before Wait reports it.
	waited := waitAsync(ctl)
	if err := ctl.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-waited; err != nil {
		t.Errorf("Wait after Shutdown: %v, want nil", err)
	}
	if st := inspect(t, sb.ID).State; st.Running {
		t.Error("the sandbox runs after Shutdown")
	}
	if _, err := os.Stat(wantNetNS); !os.IsNotExist(err) {
		t.Errorf("the netns pin is still there after Shutdown (%v)", err)
	}
	if !hasOps(nets.ops(), "attach", "detach") {
		t.Errorf("Networks calls %v after Shutdown, want attach, detach", nets.ops())
	}
	if err := ctl.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := ctl.Start(ctx); err != nil {
		t.Errorf("Start of an exited task: %v, want nil (it started already)", err)
	}

	// Remove, from a controller that knows only the task's ID.
	idOnly := mustController(t, e, &api.Task{Id: task.Id})
	if err := idOnly.Remove(ctx); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if left := nodeContainers(t, node); len(left) != 0 {
		t.Errorf("%d containers left after Remove", len(left))
	}
	detaches := nets.callsOf("detach")
	if len(detaches) != 2 || detaches[1].SandboxID != sb.ID {
		t.Errorf("Detach calls %+v, want a second one for sandbox %s", detaches, sb.ID)
	}
	if ids, err := e.Tasks(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Tasks() after Remove = %v, %v; want none", ids, err)
	}
	if err := idOnly.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := idOnly.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after Remove: %v", err)
	}
	if err := ctl.Wait(ctx); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("Wait after Remove: %v, want ErrNotFound", err)
	}
	if err := ctl.Start(ctx); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("Start after Remove: %v, want ErrNotFound", err)
	}
}

func checkSandbox(t *testing.T, sb container.InspectResponse, task *api.Task, node, host, image string) {
	t.Helper()
	if sb.Config.Hostname != host {
		t.Errorf("sandbox hostname %q, want %q", sb.Config.Hostname, host)
	}
	// No namespace from the engine: its process joins the pinned one.
	if sb.HostConfig.NetworkMode != "host" {
		t.Errorf("sandbox network mode %q, want host", sb.HostConfig.NetworkMode)
	}
	if len(sb.Mounts) != 1 || sb.Mounts[0].Destination != sandboxNetNS || sb.Mounts[0].RW {
		t.Errorf("sandbox mounts %+v, want the pinned netns read-only at %s", sb.Mounts, sandboxNetNS)
	}
	if !slices.Equal(sb.HostConfig.CapAdd, []string{"CAP_SYS_ADMIN"}) || !slices.Equal(sb.HostConfig.CapDrop, []string{"ALL"}) {
		t.Errorf("sandbox capabilities add %v drop %v, want CAP_SYS_ADMIN only", sb.HostConfig.CapAdd, sb.HostConfig.CapDrop)
	}
	if sb.Config.Image != image {
		t.Errorf("sandbox image %q, want %q", sb.Config.Image, image)
	}
	if !sb.State.Running {
		t.Errorf("sandbox %s, want running", sb.State.Status)
	}
	if sb.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("sandbox restart policy %q, want no", sb.HostConfig.RestartPolicy.Name)
	}
	checkOwnership(t, sb.Config.Labels, task, node, RoleSandbox)
}

func checkTaskContainer(t *testing.T, ctr container.InspectResponse, sandboxID string, task *api.Task, node, hostDir string) {
	t.Helper()
	if got, want := string(ctr.HostConfig.NetworkMode), "container:"+sandboxID; got != want {
		t.Errorf("network mode %q, want %q", got, want)
	}
	if ctr.Config.Image != echoImage || !slices.Equal(ctr.Config.Cmd, task.Spec.Container.Args) {
		t.Errorf("image %q cmd %q, want %q %q", ctr.Config.Image, ctr.Config.Cmd, echoImage, task.Spec.Container.Args)
	}
	for _, kv := range []string{
		"GREETING=hello", "SHOAL_TASK_ID=" + task.Id, "SHOAL_SERVICE_ID=" + task.ServiceId,
		"SHOAL_SERVICE_NAME=" + task.ServiceName, "SHOAL_SLOT=3", "SHOAL_NODE_ID=" + node,
	} {
		if !slices.Contains(ctr.Config.Env, kv) {
			t.Errorf("env %q lacks %s", ctr.Config.Env, kv)
		}
	}
	if slices.Contains(ctr.Config.Env, "SHOAL_SLOT=forged") {
		t.Errorf("env %q keeps the spec's SHOAL_SLOT", ctr.Config.Env)
	}
	if ctr.Config.WorkingDir != "/tmp" || ctr.Config.User != "1000:1000" {
		t.Errorf("dir %q user %q, want /tmp 1000:1000", ctr.Config.WorkingDir, ctr.Config.User)
	}
	if ctr.Config.Labels["team"] != "net" {
		t.Errorf("labels %v lack the spec's team=net", ctr.Config.Labels)
	}
	checkOwnership(t, ctr.Config.Labels, task, node, RoleTask)
	if ctr.Config.StopTimeout == nil || *ctr.Config.StopTimeout != 3 {
		t.Errorf("stop timeout %v, want 3", ctr.Config.StopTimeout)
	}
	if ctr.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("restart policy %q, want no", ctr.HostConfig.RestartPolicy.Name)
	}
	if r := ctr.HostConfig.Resources; r.NanoCPUs != 5e8 || r.Memory != 64<<20 || r.MemorySwap != 64<<20 {
		t.Errorf("resources CPU %d memory %d swap %d, want 5e8, 64MiB, 64MiB", r.NanoCPUs, r.Memory, r.MemorySwap)
	}
	wantMounts := map[string]string{"/host": "bind " + hostDir + " ro", "/tmp": "tmpfs  rw", "/data": "volume  rw"}
	for _, m := range ctr.HostConfig.Mounts {
		rw := "rw"
		if m.ReadOnly {
			rw = "ro"
		}
		got := strings.Join([]string{string(m.Type), m.Source, rw}, " ")
		if want, ok := wantMounts[m.Target]; !ok || got != want {
			t.Errorf("mount %s: %q, want %q", m.Target, got, want)
		}
		delete(wantMounts, m.Target)
	}
	if len(wantMounts) != 0 {
		t.Errorf("mounts missing: %v", wantMounts)
	}
}

func checkOwnership(t *testing.T, labels map[string]string, task *api.Task, node, role string) {
	t.Helper()
	want := map[string]string{
		LabelTaskID: task.Id, LabelServiceID: task.ServiceId, LabelServiceName: task.ServiceName,
		LabelSlot: fmt.Sprint(task.Slot), LabelNodeID: node, LabelRole: role,
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("%s label %s = %q, want %q", role, k, labels[k], v)
		}
	}
}
