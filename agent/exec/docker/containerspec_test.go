package docker

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

func TestNames(t *testing.T) {
	tests := []struct {
		name                                 string
		task                                 *api.Task
		wantContainer, wantSandbox, wantHost string
	}{
		{"replicated", &api.Task{Id: "t1", ServiceName: "web", Slot: 3},
			"web.3.t1", "web.3.t1-sandbox", "web.3"},
		{"global", &api.Task{Id: "t1", ServiceName: "web", Slot: 0},
			"web.node1.t1", "web.node1.t1-sandbox", "web.node1"},
		{"underscores and dots", &api.Task{Id: "t1", ServiceName: "my_app..v2", Slot: 1},
			"my_app..v2.1.t1", "my_app..v2.1.t1-sandbox", "my-app.v2.1"},
		{"no service name", &api.Task{Id: "t1", Slot: 2},
			"task.2.t1", "task.2.t1-sandbox", "task.2"},
		{"long", &api.Task{Id: "t1", ServiceName: strings.Repeat("a", 70), Slot: 2},
			strings.Repeat("a", 70) + ".2.t1", strings.Repeat("a", 70) + ".2.t1-sandbox", strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := containerName(tt.task, "node1"); got != tt.wantContainer {
				t.Errorf("containerName = %q, want %q", got, tt.wantContainer)
			}
			if got := sandboxName(tt.task, "node1"); got != tt.wantSandbox {
				t.Errorf("sandboxName = %q, want %q", got, tt.wantSandbox)
			}
			if got := hostname(tt.task, "node1"); got != tt.wantHost {
				t.Errorf("hostname = %q, want %q", got, tt.wantHost)
			}
		})
	}
}

func TestEngineName(t *testing.T) {
	for in, want := range map[string]string{
		"web.1.abc": "web.1.abc",
		"a b/c":     "a-b-c",
		"_x":        "x_x",
		"":          "x",
	} {
		if got := engineName(in); got != want {
			t.Errorf("engineName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTaskEnv(t *testing.T) {
	task := &api.Task{
		Id: "t1", ServiceId: "s1", ServiceName: "web", Slot: 3,
		Spec: &api.TaskSpec{Container: &api.ContainerSpec{Env: []string{"A=1", "SHOAL_SLOT=99", "SHOAL_OTHER=x", "B"}}},
	}
	want := []string{"A=1", "SHOAL_OTHER=x", "B",
		"SHOAL_TASK_ID=t1", "SHOAL_SERVICE_ID=s1", "SHOAL_SERVICE_NAME=web", "SHOAL_SLOT=3", "SHOAL_NODE_ID=n1"}
	if got := taskEnv(task, "n1"); !slices.Equal(got, want) {
		t.Errorf("taskEnv = %q\nwant %q", got, want)
	}
}

func TestEngineMounts(t *testing.T) {
	dir := t.TempDir()
	valid := []*api.Mount{
		{Type: api.Mount_TYPE_BIND, Source: dir, Target: "/host", ReadOnly: true},
		{Type: api.Mount_TYPE_VOLUME, Source: "data", Target: "/data"},
		{Type: api.Mount_TYPE_VOLUME, Target: "/anon"},
		{Type: api.Mount_TYPE_TMPFS, Target: "/tmp"},
	}
	got, err := engineMounts(valid)
	if err != nil {
		t.Fatal(err)
	}
	want := []mount.Mount{
		{Type: mount.TypeBind, Source: dir, Target: "/host", ReadOnly: true},
		{Type: mount.TypeVolume, Source: "data", Target: "/data"},
		{Type: mount.TypeVolume, Target: "/anon"},
		{Type: mount.TypeTmpfs, Target: "/tmp"},
	}
	if !slices.EqualFunc(got, want, func(a, b mount.Mount) bool {
		return a.Type == b.Type && a.Source == b.Source && a.Target == b.Target && a.ReadOnly == b.ReadOnly
	}) {
		t.Errorf("engineMounts = %+v\nwant %+v", got, want)
	}

	tests := []struct {
		name      string
		mounts    []*api.Mount
		wantIndex int
		want      string
	}{
		{"no target", []*api.Mount{{Type: api.Mount_TYPE_TMPFS}}, 0, "no target"},
		{"relative target", []*api.Mount{{Type: api.Mount_TYPE_TMPFS, Target: "tmp"}}, 0, "not an absolute path"},
		{"root target", []*api.Mount{{Type: api.Mount_TYPE_TMPFS, Target: "/."}}, 0, "cannot be /"},
		{"same target", []*api.Mount{{Type: api.Mount_TYPE_TMPFS, Target: "/a"}, {Type: api.Mount_TYPE_TMPFS, Target: "/a/"}}, 1, "mount 1 has the same target"},
		{"bind without source", []*api.Mount{{Type: api.Mount_TYPE_BIND, Target: "/a"}}, 0, "needs a source"},
		{"bind relative source", []*api.Mount{{Type: api.Mount_TYPE_BIND, Source: "x", Target: "/a"}}, 0, "source is not an absolute path"},
		{"bind missing source", []*api.Mount{valid[3], {Type: api.Mount_TYPE_BIND, Source: dir + "/nope", Target: "/a"}}, 1, "does not exist on this node"},
		{"volume path", []*api.Mount{{Type: api.Mount_TYPE_VOLUME, Source: "/srv", Target: "/a"}}, 0, "a volume's source is a volume name"},
		{"volume bad name", []*api.Mount{{Type: api.Mount_TYPE_VOLUME, Source: "a b", Target: "/a"}}, 0, "not a volume name"},
		{"tmpfs source", []*api.Mount{{Type: api.Mount_TYPE_TMPFS, Source: "x", Target: "/a"}}, 0, "takes no source"},
		{"unknown type", []*api.Mount{{Type: api.Mount_Type(9), Target: "/a"}}, 0, "unknown mount type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engineMounts(tt.mounts)
			var me *MountError
			if !errors.As(err, &me) {
				t.Fatalf("error %v, want a *MountError", err)
			}
			if me.Index != tt.wantIndex || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q (index %d), want index %d and %q", err, me.Index, tt.wantIndex, tt.want)
			}
		})
	}
}

func TestMountErrorNamesTheMount(t *testing.T) {
	err := &MountError{Index: 1, Mount: &api.Mount{Type: api.Mount_TYPE_BIND, Source: "/nope", Target: "/data"}, Reason: "the source does not exist on this node"}
	want := `mount 2 (bind "/nope" → "/data"): the source does not exist on this node`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestStopSeconds(t *testing.T) {
	tests := []struct {
		grace   *durationpb.Duration
		want    int
		wantErr bool
	}{
		{nil, 10, false},
		{durationpb.New(0), 0, false},
		{durationpb.New(1500 * time.Millisecond), 2, false},
		{durationpb.New(30 * time.Second), 30, false},
		{durationpb.New(-time.Second), 0, true},
	}
	for _, tt := range tests {
		task := &api.Task{Spec: &api.TaskSpec{Container: &api.ContainerSpec{StopGracePeriod: tt.grace}}}
		got, err := stopSeconds(task)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("stopSeconds(%v) = %d, %v; want %d, error %v", tt.grace, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestEngineResources(t *testing.T) {
	reqs := func(cpu, mem, resMem int64) *api.Task {
		return &api.Task{Spec: &api.TaskSpec{Resources: &api.ResourceRequirements{
			Limits:       &api.Resources{NanoCpus: cpu, MemoryBytes: mem},
			Reservations: &api.Resources{MemoryBytes: resMem},
		}}}
	}
	tests := []struct {
		name    string
		task    *api.Task
		want    container.Resources
		wantErr string
	}{
		{"none", &api.Task{}, container.Resources{}, ""},
		{"limits", reqs(5e8, 64<<20, 0), container.Resources{NanoCPUs: 5e8, Memory: 64 << 20, MemorySwap: 64 << 20}, ""},
		{"reservation under the limit", reqs(0, 64<<20, 32<<20), container.Resources{Memory: 64 << 20, MemorySwap: 64 << 20, MemoryReservation: 32 << 20}, ""},
		{"reservation over the limit", reqs(0, 64<<20, 128<<20), container.Resources{Memory: 64 << 20, MemorySwap: 64 << 20}, ""},
		{"reservation alone", reqs(0, 0, 32<<20), container.Resources{MemoryReservation: 32 << 20}, ""},
		{"negative CPU", reqs(-1, 0, 0), container.Resources{}, "CPU limit"},
		{"negative memory", reqs(0, -1, 0), container.Resources{}, "memory limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := engineResources(tt.task)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.NanoCPUs != tt.want.NanoCPUs || got.Memory != tt.want.Memory ||
				got.MemorySwap != tt.want.MemorySwap || got.MemoryReservation != tt.want.MemoryReservation {
				t.Errorf("engineResources = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTaskContainerRejects(t *testing.T) {
	tests := []struct {
		name string
		task *api.Task
		want string
	}{
		{"no spec", &api.Task{Id: "t1"}, "no container spec"},
		{"no image", &api.Task{Id: "t1", Spec: &api.TaskSpec{Container: &api.ContainerSpec{}}}, "names no image"},
		{"bad mount", &api.Task{Id: "t1", Spec: &api.TaskSpec{Container: &api.ContainerSpec{
			Image: "x", Mounts: []*api.Mount{{Type: api.Mount_TYPE_TMPFS}}}}}, "mount 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := taskContainer(tt.task, "n1"); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestOwnershipLabelsWinOverTheSpec(t *testing.T) {
	task := &api.Task{Id: "t1", ServiceId: "s1", ServiceName: "web", Slot: 2, Spec: &api.TaskSpec{Container: &api.ContainerSpec{
		Image: "x", Labels: map[string]string{"team": "a", LabelTaskID: "forged", LabelRole: "sandbox"}}}}
	opts, err := taskContainer(task, "n1")
	if err != nil {
		t.Fatal(err)
	}
	got := opts.Config.Labels
	want := map[string]string{"team": "a", LabelTaskID: "t1", LabelServiceID: "s1", LabelServiceName: "web",
		LabelSlot: "2", LabelNodeID: "n1", LabelRole: RoleTask}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

func TestExitResult(t *testing.T) {
	state := func(code int, oom bool, msg string) *container.InspectResponse {
		return &container.InspectResponse{State: &container.State{Status: container.StateExited, ExitCode: code, OOMKilled: oom, Error: msg}}
	}
	if err := exitResult(state(0, false, "")); err != nil {
		t.Errorf("exit 0: %v, want nil", err)
	}
	if err := exitResult(state(137, true, "")); !errors.Is(err, ErrOutOfMemory) || err.Error() != "exit code 137: killed: out of memory" {
		t.Errorf("OOM: %v", err)
	}
	if err := exitResult(state(3, false, "")); err == nil || err.Error() != "exit code 3" {
		t.Errorf("exit 3: %v", err)
	}
	if err := exitResult(state(127, false, "exec: not found")); err == nil || err.Error() != "exit code 127: exec: not found" {
		t.Errorf("exit 127: %v", err)
	}
}

func TestParsePullPolicy(t *testing.T) {
	for _, s := range []string{"always", "missing", "never"} {
		if p, err := ParsePullPolicy(s); err != nil || string(p) != s {
			t.Errorf("ParsePullPolicy(%q) = %q, %v", s, p, err)
		}
	}
	if _, err := ParsePullPolicy("sometimes"); err == nil {
		t.Error("ParsePullPolicy(sometimes): no error")
	}
}

func TestImageErrorMessage(t *testing.T) {
	err := &ImageError{Image: "nosuch:1", Err: errors.New("no such host")}
	if want := `image "nosuch:1" is not on this node and cannot be pulled: no such host`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}
