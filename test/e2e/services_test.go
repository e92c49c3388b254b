package e2e

// Process-level tests of orchestration on real shoald processes: 3
// managers (drained, so they run nothing) and 5 workers with the sim
// executor. The steps share one cluster and run in order, the way an
// operator would drive it: spread, drain, pause, a worker killed, scaling,
// rolling updates (in order, start-first, failing), a leader killed in the
// middle of an update, global services following nodes, and tasks that fit
// nowhere.

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

func TestOrchestration(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(3)
	for i := 1; i <= 3; i++ {
		c.setAvailability(fmt.Sprintf("node-%d", i), api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	}
	c.startWorkers(4, 8)

	steps := []struct {
		name string
		run  func(t *testing.T, c *cluster)
	}{
		{"spread 10 replicas 2 per worker", stepSpread},
		{"drain moves tasks off a node", stepDrain},
		{"pause stops new placements only", stepPause},
		{"killed worker's tasks run elsewhere", stepKillWorker},
		{"a silent worker comes back and stops its replaced tasks", stepSilentWorker},
		{"scale 10 to 3 to 10", stepScale},
		{"rolling update in groups of 2 with 1s delay", stepRollingUpdate},
		{"start-first keeps replicas running", stepStartFirst},
		{"failing update pauses, rollback restores", stepFailingUpdatePauses},
		{"failing update rolls back", stepFailingUpdateRollsBack},
		{"leader killed during a rolling update", stepLeaderKilledDuringUpdate},
		{"global service follows nodes", stepGlobal},
		{"tasks that fit nowhere stay pending with the reason", stepPending},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) {
			c.t = t
			defer func(parent *testing.T) { c.t = parent }(t)
			s.run(t, c)
		}) {
			t.Fatalf("step %q failed; the later steps depend on it", s.name)
		}
	}
}

func stepSpread(t *testing.T, c *cluster) {
	c.createService(simSpec("web", 10))
	v := c.waitConverged("web", 10, 60*time.Second)
	for i := 4; i <= 8; i++ {
		if got := v.perHost()[fmt.Sprintf("node-%d", i)]; got != 2 {
			t.Fatalf("node-%d runs %d tasks, want 2: %v", i, got, v.perHost())
		}
	}
	for i := 1; i <= 3; i++ {
		if got := v.perHost()[fmt.Sprintf("node-%d", i)]; got != 0 {
			t.Fatalf("drained manager node-%d runs %d tasks", i, got)
		}
	}
}

func stepDrain(t *testing.T, c *cluster) {
	c.setAvailability("node-8", api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	eventually(t, 60*time.Second, "node-8 runs nothing and web runs 10", func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		if err := v.converged(10); err != nil {
			return err
		}
		if left := v.meantToRunOn("node-8"); len(left) > 0 {
			return fmt.Errorf("%d tasks still meant to run on node-8", len(left))
		}
		for _, tk := range v.tasks {
			if v.host[tk.NodeId] == "node-8" && tk.Status.GetState() == api.TaskState_TASK_STATE_RUNNING {
				return fmt.Errorf("task %s still running on node-8", tk.Id)
			}
		}
		return checkSlots(v.slots(), 1, 10)
	})
	c.setAvailability("node-8", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
}

func stepPause(t *testing.T, c *cluster) {
	before, err := c.view("web")
	if err != nil {
		t.Fatal(err)
	}
	kept := before.perHost()["node-7"]
	if kept == 0 {
		t.Fatalf("node-7 runs no web task to keep: %v", before.perHost())
	}
	c.setAvailability("node-7", api.NodeAvailability_NODE_AVAILABILITY_PAUSE)
	c.updateService("web", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 14 })
	v := c.waitConverged("web", 14, 60*time.Second)
	if got := v.perHost()["node-7"]; got != kept {
		t.Fatalf("paused node-7 runs %d tasks, it ran %d before the pause", got, kept)
	}
	for _, tk := range v.running() {
		if tk.Slot > 10 && v.host[tk.NodeId] == "node-7" {
			t.Fatalf("new slot %d placed on paused node-7", tk.Slot)
		}
	}
	c.updateService("web", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 10 })
	c.waitConverged("web", 10, 60*time.Second)
	c.setAvailability("node-7", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
}

func stepKillWorker(t *testing.T, c *cluster) {
	v, err := c.view("web")
	if err != nil {
		t.Fatal(err)
	}
	if v.perHost()["node-6"] == 0 {
		t.Fatalf("node-6 runs no web task: %v", v.perHost())
	}
	killed := time.Now()
	c.node(6).kill()
	eventually(t, 60*time.Second, "web runs 10 without node-6", func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		if err := v.converged(10); err != nil {
			return err
		}
		if n := len(v.meantToRunOn("node-6")); n > 0 {
			return fmt.Errorf("%d tasks still meant to run on node-6", n)
		}
		return checkSlots(v.slots(), 1, 10)
	})
	// The dispatcher heartbeat is 1s: node-6 is declared down after 3s.
	t.Logf("killed node-6; its tasks ran elsewhere after %s", time.Since(killed).Round(10*time.Millisecond))
	c.waitNodeState("node-6", api.NodeState_NODE_STATE_DOWN)
	// It comes back empty-handed: its old tasks are not run again there.
	c.start(6)
	c.waitNodeState("node-6", api.NodeState_NODE_STATE_READY)
	eventually(t, 30*time.Second, "node-6's replaced tasks reported stopped", func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		for _, tk := range v.tasks {
			if v.host[tk.NodeId] == "node-6" && tk.Status.GetState() == api.TaskState_TASK_STATE_RUNNING {
				return fmt.Errorf("task %s (desired %s) still reported running on node-6", tk.Id, tk.DesiredState)
			}
		}
		return nil
	})
	c.waitConverged("web", 10, 30*time.Second)
}

// stepSilentWorker freezes node-5 (SIGSTOP: its process and its sim tasks
// live on, but it sends no heartbeat), waits until its tasks run elsewhere,
// then lets it go on: it must stop the tasks that were replaced, so no slot
// runs twice.
func stepSilentWorker(t *testing.T, c *cluster) {
	v, err := c.view("web")
	if err != nil {
		t.Fatal(err)
	}
	var frozen []string
	for _, tk := range v.running() {
		if v.host[tk.NodeId] == "node-5" {
			frozen = append(frozen, tk.Id)
		}
	}
	if len(frozen) == 0 {
		t.Fatalf("node-5 runs no web task: %v", v.perHost())
	}
	p := c.node(5)
	p.pause()
	resumed := false
	defer func() {
		if !resumed {
			p.resume()
		}
	}()
	c.waitNodeState("node-5", api.NodeState_NODE_STATE_DOWN)
	eventually(t, 60*time.Second, "web runs 10 without node-5", func() error {
		v, err := c.view("web")
		if err != nil {
			return err
		}
		if n := len(v.meantToRunOn("node-5")); n > 0 {
			return fmt.Errorf("%d tasks still meant to run on node-5", n)
		}
		return v.converged(10)
	})
	p.resume()
	resumed = true
	c.waitNodeState("node-5", api.NodeState_NODE_STATE_READY)
	eventually(t, 30*time.Second, "node-5 stopped its replaced tasks", func() error {
		for _, id := range frozen {
			got, err := c.anyControl().GetTask(ctxT(t, 5*time.Second), &api.GetTaskRequest{TaskId: id})
			if err != nil {
				return err
			}
			if st := got.Task.Status.GetState(); st != api.TaskState_TASK_STATE_SHUTDOWN {
				return fmt.Errorf("replaced task %s (desired %s) is %s on node-5", id, got.Task.DesiredState, st)
			}
		}
		return nil
	})
	v = c.waitConverged("web", 10, 30*time.Second)
	// Each slot has one task running, and node-5 none of the old ones.
	if err := checkSlots(v.slots(), 1, 10); err != nil {
		t.Fatal(err)
	}
}

func stepScale(t *testing.T, c *cluster) {
	c.updateService("web", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 3 })
	v := c.waitConverged("web", 3, 60*time.Second)
	if err := checkSlots(v.slots(), 1, 3); err != nil {
		t.Fatalf("after scaling to 3: %v", err)
	}
	c.updateService("web", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 10 })
	v = c.waitConverged("web", 10, 60*time.Second)
	if err := checkSlots(v.slots(), 1, 10); err != nil {
		t.Fatalf("after scaling back to 10: %v", err)
	}
}

// checkSlots checks that slots are exactly from..to.
func checkSlots(slots []uint64, from, to uint64) error {
	if uint64(len(slots)) != to-from+1 {
		return fmt.Errorf("slots %v, want %d..%d", slots, from, to)
	}
	for i, s := range slots {
		if s != from+uint64(i) {
			return fmt.Errorf("slots %v, want %d..%d", slots, from, to)
		}
	}
	return nil
}

func stepGlobal(t *testing.T, c *cluster) {
	spec := simSpec("monitor", 0)
	spec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	c.createService(spec)
	// Workers 4..8 are active; the managers are drained.
	hosts := func(v *view) []string {
		var out []string
		for h, n := range v.perHost() {
			for range n {
				out = append(out, h)
			}
		}
		sort.Strings(out)
		return out
	}
	waitHosts := func(want ...string) {
		t.Helper()
		eventually(t, 60*time.Second, "monitor on "+strings.Join(want, ","), func() error {
			v, err := c.view("monitor")
			if err != nil {
				return err
			}
			if got := hosts(v); strings.Join(got, ",") != strings.Join(want, ",") {
				return fmt.Errorf("monitor runs on %v", got)
			}
			return nil
		})
	}
	waitHosts("node-4", "node-5", "node-6", "node-7", "node-8")
	c.startWorkers(9, 9)
	waitHosts("node-4", "node-5", "node-6", "node-7", "node-8", "node-9")
	c.setAvailability("node-9", api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	waitHosts("node-4", "node-5", "node-6", "node-7", "node-8")
}

func stepPending(t *testing.T, c *cluster) {
	big := simSpec("big", 2)
	big.Task.Resources = &api.ResourceRequirements{Reservations: &api.Resources{NanoCpus: 1000 * 1e9}}
	c.createService(big)
	nowhere := simSpec("nowhere", 1)
	nowhere.Task.Placement = &api.Placement{Constraints: []string{"node.labels.zone==mars"}}
	c.createService(nowhere)
	for _, want := range []struct{ service, reason string }{
		{"big", "no suitable node"},
		{"nowhere", "no suitable node"},
	} {
		eventually(t, 30*time.Second, want.service+" pending with a reason", func() error {
			out, err := c.shoalctl(1, "service", "ps", "--no-trunc", want.service)
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if !strings.Contains(strings.ToLower(out), "pending") || !strings.Contains(out, want.reason) {
				return fmt.Errorf("service ps shows no pending reason:\n%s", out)
			}
			return nil
		})
	}
	out, _ := c.shoalctl(1, "service", "ps", "--no-trunc", "big", "nowhere")
	t.Logf("service ps big nowhere:\n%s", out)
}
