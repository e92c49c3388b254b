package update

// The pure rules: what rolling a slot takes, which update config applies,
// and the status messages other components match on.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

func TestPlanSlot(t *testing.T) {
	svc := &api.Service{Id: svcID, SpecVersion: 2, Spec: replicatedSpec(1, "web:2", nil)}
	task := func(id string, version uint64, img string, desired, state api.TaskState) *api.Task {
		return &api.Task{Id: id, ServiceId: svcID, Slot: 1, SpecVersion: version, DesiredState: desired,
			Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: img}},
			Status: &api.TaskStatus{State: state}}
	}
	const (
		run      = api.TaskState_TASK_STATE_RUNNING
		pending  = api.TaskState_TASK_STATE_PENDING
		shutdown = api.TaskState_TASK_STATE_SHUTDOWN
		failed   = api.TaskState_TASK_STATE_FAILED
		complete = api.TaskState_TASK_STATE_COMPLETE
	)
	for _, tc := range []struct {
		name       string
		tasks      []*api.Task
		wantOK     bool
		wantKeep   string
		wantRetire []string
	}{
		{"up to date", []*api.Task{task("a", 2, "web:2", run, run)}, false, "", nil},
		{"only history is old", []*api.Task{task("a", 1, "web:1", shutdown, shutdown), task("b", 2, "web:2", run, run)}, false, "", nil},
		{"old task running", []*api.Task{task("a", 1, "web:1", run, run)}, true, "", []string{"a"}},
		{"old task finished for good", []*api.Task{task("a", 1, "web:1", complete, complete)}, true, "", []string{"a"}},
		{"new task already there", []*api.Task{task("a", 1, "web:1", run, run), task("b", 2, "web:2", run, pending)}, true, "b", []string{"a"}},
		{"new task ended is replaced", []*api.Task{task("a", 1, "web:1", run, run), task("b", 2, "web:2", run, failed)}, true, "", []string{"a", "b"}},
		{"the furthest new task is kept", []*api.Task{task("a", 1, "web:1", run, run), task("b", 2, "web:2", run, pending), task("c", 2, "web:2", run, run)},
			true, "c", []string{"a", "b"}},
		{"same spec, old number", []*api.Task{task("a", 1, "web:2", run, run)}, false, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := planSlot(svc, tc.tasks)
			var keep string
			if p.keep != nil {
				keep = p.keep.Id
			}
			var retire []string
			for _, r := range p.retire {
				retire = append(retire, r.Id)
			}
			if ok != tc.wantOK || keep != tc.wantKeep || !slices.Equal(retire, tc.wantRetire) {
				t.Errorf("planSlot = keep %q retire %v ok %v, want keep %q retire %v ok %v",
					keep, retire, ok, tc.wantKeep, tc.wantRetire, tc.wantOK)
			}
		})
	}
}

func TestConfigFor(t *testing.T) {
	update := updateConfig(3, time.Second, 2*time.Second, cont)
	back := updateConfig(5, 0, time.Second, pause)
	back.Order = api.UpdateConfig_ORDER_START_FIRST
	noMonitor := &api.UpdateConfig{Parallelism: 0, MaxFailureRatio: 0.2}
	for _, tc := range []struct {
		name        string
		spec        *api.ServiceSpec
		rollingBack bool
		want        config
	}{
		{"defaults", &api.ServiceSpec{}, false, defaultConfig},
		{"defaults while rolling back", &api.ServiceSpec{}, true, defaultConfig},
		{"update", &api.ServiceSpec{Update: update, Rollback: back}, false,
			config{parallelism: 3, delay: time.Second, failureAction: cont, monitor: 2 * time.Second}},
		{"rollback", &api.ServiceSpec{Update: update, Rollback: back}, true,
			config{parallelism: 5, failureAction: pause, monitor: time.Second, startFirst: true}},
		{"rollback falls back to update", &api.ServiceSpec{Update: update}, true,
			config{parallelism: 3, delay: time.Second, failureAction: cont, monitor: 2 * time.Second}},
		{"no monitor means the default; parallelism 0 stays all at once", &api.ServiceSpec{Update: noMonitor}, false,
			config{monitor: DefaultMonitor, maxFailureRatio: 0.2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := configFor(tc.spec, tc.rollingBack); got != tc.want {
				t.Errorf("configFor = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStatusMessages(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{PausedMessage("t1"), "update paused due to failure or early termination of task t1"},
		{RolledBackMessage("t1"), "update rolled back due to failure or early termination of task t1"},
		{RollbackPausedMessage("t1"), "rollback paused due to failure or early termination of task t1"},
	} {
		if tc.got != tc.want || !strings.HasSuffix(tc.got, "t1") {
			t.Errorf("message %q, want %q", tc.got, tc.want)
		}
	}
}

// TestMarkRolledBack: a rollback returns to the previous template, and
// refuses (changing nothing) when there is none or it is the failed one.
func TestMarkRolledBack(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		previous *api.ServiceSpec
		want     bool
	}{
		{"no previous spec", nil, false},
		{"previous template differs", replicatedSpec(3, "web:1", nil), true},
		{"previous template is the failed one (a scale since)", replicatedSpec(5, "web:2", nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &api.Service{Id: svcID, SpecVersion: 4, Spec: replicatedSpec(3, "web:2", nil), PreviousSpec: tc.previous}
			got := markRolledBack(svc, "task-x", now)
			if got != tc.want {
				t.Fatalf("markRolledBack = %v, want %v", got, tc.want)
			}
			img := svc.Spec.GetTask().GetContainer().GetImage()
			switch {
			case got && (img != "web:1" || svc.SpecVersion != 5 || svc.UpdateStatus.GetState() != api.UpdateStatus_STATE_ROLLBACK_STARTED):
				t.Fatalf("after a rollback: image %s, spec_version %d, status %v", img, svc.SpecVersion, svc.UpdateStatus)
			case !got && (img != "web:2" || svc.SpecVersion != 4 || svc.UpdateStatus != nil):
				t.Fatalf("a refused rollback changed the service: image %s, spec_version %d, status %v", img, svc.SpecVersion, svc.UpdateStatus)
			}
		})
	}
}
