package e2e

// The rolling-update steps of TestOrchestration: groups in order, start-
// first, failing updates that pause or roll back, and a leader killed in the
// middle of an update; with the sampler that watches a service roll.

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

// rollWatch samples a service while it updates.
type rollWatch struct {
	minRunning int
	// firstSeen is when each task of the new spec was first seen, by slot.
	firstSeen map[uint64]time.Time
	// maxOut is the most slots seen at once without a running task.
	maxOut int
}

// watchRoll samples the service every 50ms until it converges on a new
// spec version (after from) with want tasks, or the update stops.
func (c *cluster) watchRoll(name string, from uint64, want int, timeout time.Duration) (*rollWatch, *api.Service) {
	c.t.Helper()
	w := &rollWatch{minRunning: want, firstSeen: map[uint64]time.Time{}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		v, err := c.view(name)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		run := v.running()
		w.minRunning = min(w.minRunning, len(run))
		up := map[uint64]bool{}
		for _, tk := range run {
			up[tk.Slot] = true
		}
		w.maxOut = max(w.maxOut, want-len(up))
		for _, tk := range v.tasks {
			if tk.SpecVersion > from && tk.DesiredState == api.TaskState_TASK_STATE_RUNNING {
				if _, ok := w.firstSeen[tk.Slot]; !ok {
					w.firstSeen[tk.Slot] = time.Now()
				}
			}
		}
		st := v.service.UpdateStatus.GetState()
		if v.service.SpecVersion > from && v.converged(want) == nil &&
			(st == api.UpdateStatus_STATE_COMPLETED || st == api.UpdateStatus_STATE_ROLLBACK_COMPLETED) {
			return w, v.service
		}
		if st == api.UpdateStatus_STATE_PAUSED || st == api.UpdateStatus_STATE_ROLLBACK_PAUSED {
			return w, v.service
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("%s did not finish its update within %s", name, timeout)
	return nil, nil
}

// groups splits first-seen times into groups separated by gaps ≥ gap.
func (w *rollWatch) groups(gap time.Duration) [][]uint64 {
	type seen struct {
		slot uint64
		at   time.Time
	}
	var all []seen
	for s, at := range w.firstSeen {
		all = append(all, seen{s, at})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	var out [][]uint64
	for i, s := range all {
		if i == 0 || s.at.Sub(all[i-1].at) >= gap {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], s.slot)
	}
	return out
}

func stepRollingUpdate(t *testing.T, c *cluster) {
	before, err := c.service("web")
	if err != nil {
		t.Fatal(err)
	}
	c.updateService("web", func(s *api.ServiceSpec) {
		s.Task.Container.Image = "sim/web:2"
		s.Update = &api.UpdateConfig{Parallelism: 2, Delay: durationpb.New(time.Second), Monitor: durationpb.New(200 * time.Millisecond)}
	})
	w, svc := c.watchRoll("web", before.SpecVersion, 10, 120*time.Second)
	if st := svc.UpdateStatus.GetState(); st != api.UpdateStatus_STATE_COMPLETED {
		t.Fatalf("update ended %s: %s", st, svc.UpdateStatus.GetMessage())
	}
	// Parallelism 2: never more than 2 slots down at once; delay 1s: the
	// new tasks appear in groups at least ~1s apart (sampling is 50ms, so
	// the gap used to split groups is 700ms), of at most 2 each.
	if w.maxOut > 2 {
		t.Fatalf("%d slots were down at once with parallelism 2", w.maxOut)
	}
	groups := w.groups(700 * time.Millisecond)
	t.Logf("new tasks appeared in groups %v", groups)
	if len(groups) < 5 {
		t.Fatalf("the 10 new tasks appeared in %d groups %v, want 5 groups of 2 (1s apart)", len(groups), groups)
	}
	for _, g := range groups {
		if len(g) > 2 {
			t.Fatalf("group %v larger than the parallelism 2 (groups %v)", g, groups)
		}
	}
}

func stepStartFirst(t *testing.T, c *cluster) {
	before, err := c.service("web")
	if err != nil {
		t.Fatal(err)
	}
	c.updateService("web", func(s *api.ServiceSpec) {
		s.Task.Container.Image = "sim/web:3"
		s.Update = &api.UpdateConfig{Parallelism: 2, Order: api.UpdateConfig_ORDER_START_FIRST, Monitor: durationpb.New(200 * time.Millisecond)}
	})
	w, svc := c.watchRoll("web", before.SpecVersion, 10, 120*time.Second)
	if st := svc.UpdateStatus.GetState(); st != api.UpdateStatus_STATE_COMPLETED {
		t.Fatalf("update ended %s: %s", st, svc.UpdateStatus.GetMessage())
	}
	if w.minRunning < 10 {
		t.Fatalf("start-first: only %d tasks were running at one point, want ≥ 10", w.minRunning)
	}
}

// failingSpec makes every new task fail as it starts.
func failingSpec(image string, action api.UpdateConfig_FailureAction) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) {
		s.Task.Container.Image = image
		s.Task.Container.Env = append(s.Task.Container.Env, "SIM_FAIL_START=1")
		s.Task.Restart = &api.RestartPolicy{Delay: durationpb.New(100 * time.Millisecond)}
		s.Update = &api.UpdateConfig{Parallelism: 2, FailureAction: action, Monitor: durationpb.New(time.Second)}
		s.Rollback = &api.UpdateConfig{Parallelism: 0, Monitor: durationpb.New(200 * time.Millisecond)}
	}
}

func stepFailingUpdatePauses(t *testing.T, c *cluster) {
	good, err := c.service("web")
	if err != nil {
		t.Fatal(err)
	}
	c.updateService("web", failingSpec("sim/web:broken", api.UpdateConfig_FAILURE_ACTION_PAUSE))
	svc := c.waitUpdateState("web", api.UpdateStatus_STATE_PAUSED, 60*time.Second)
	t.Logf("paused: %s", svc.UpdateStatus.GetMessage())
	v, err := c.view("web")
	if err != nil {
		t.Fatal(err)
	}
	old := 0
	for _, tk := range v.running() {
		if tk.SpecVersion == good.SpecVersion {
			old++
		}
	}
	if old < 8 {
		t.Fatalf("only %d tasks of the good spec still run after a paused update with parallelism 2 (%s)", old, v.summary())
	}
	// A manual rollback returns to the good spec.
	out, err := c.shoalctl(1, "service", "rollback", "--detach", "web")
	if err != nil {
		t.Fatalf("service rollback: %v\n%s", err, out)
	}
	c.waitUpdateState("web", api.UpdateStatus_STATE_ROLLBACK_COMPLETED, 60*time.Second)
	v = c.waitConverged("web", 10, 60*time.Second)
	if img := v.service.Spec.Task.Container.Image; img != good.Spec.Task.Container.Image {
		t.Fatalf("after rollback the image is %s, want %s", img, good.Spec.Task.Container.Image)
	}
}

func stepFailingUpdateRollsBack(t *testing.T, c *cluster) {
	good, err := c.service("web")
	if err != nil {
		t.Fatal(err)
	}
	c.updateService("web", failingSpec("sim/web:broken-again", api.UpdateConfig_FAILURE_ACTION_ROLLBACK))
	svc := c.waitUpdateState("web", api.UpdateStatus_STATE_ROLLBACK_COMPLETED, 90*time.Second)
	t.Logf("rolled back: %s", svc.UpdateStatus.GetMessage())
	v := c.waitConverged("web", 10, 60*time.Second)
	if img := v.service.Spec.Task.Container.Image; img != good.Spec.Task.Container.Image {
		t.Fatalf("after the automatic rollback the image is %s, want %s", img, good.Spec.Task.Container.Image)
	}
	for _, tk := range v.running() {
		if tk.Spec.Container.Image != good.Spec.Task.Container.Image {
			t.Fatalf("task %s runs %s after the rollback", tk.Id, tk.Spec.Container.Image)
		}
	}
}

func stepLeaderKilledDuringUpdate(t *testing.T, c *cluster) {
	before, err := c.service("web")
	if err != nil {
		t.Fatal(err)
	}
	c.updateService("web", func(s *api.ServiceSpec) {
		s.Task.Container.Image = "sim/web:4"
		s.Task.Container.Env = nil
		s.Update = &api.UpdateConfig{Parallelism: 1, Delay: durationpb.New(500 * time.Millisecond), Monitor: durationpb.New(200 * time.Millisecond)}
	})
	// Let the update get going, then kill the leader.
	eventually(t, 60*time.Second, "the update replaced 2 tasks", func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		n := 0
		for _, tk := range v.running() {
			if tk.SpecVersion > before.SpecVersion {
				n++
			}
		}
		if n < 2 {
			return fmt.Errorf("%d tasks updated", n)
		}
		return nil
	})
	leader, err := c.leader(1)
	if err != nil {
		t.Fatal(err)
	}
	c.node(leader).kill()
	t.Logf("killed the leader node-%d in the middle of the update", leader)
	c.waitUpdateState("web", api.UpdateStatus_STATE_COMPLETED, 120*time.Second)
	v := c.waitConverged("web", 10, 60*time.Second)
	for _, tk := range v.running() {
		if tk.Spec.Container.Image != "sim/web:4" {
			t.Fatalf("task %s runs %s after the update", tk.Id, tk.Spec.Container.Image)
		}
	}
	c.start(leader)
	c.waitManagers(3, 3)
}
