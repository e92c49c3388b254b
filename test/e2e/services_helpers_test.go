package e2e

// This file owns the helpers of the orchestration tests: starting sim
// workers, changing node availability, creating and updating services
// through the Control API, and reading where their tasks run.

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

// startWorkers starts nodes from..to as workers joining through node 1 and
// waits until the cluster sees them READY.
func (c *cluster) startWorkers(from, to int) {
	c.t.Helper()
	token := c.joinToken(1, api.NodeRole_NODE_ROLE_WORKER)
	for i := from; i <= to; i++ {
		c.start(i, "--join-addr", c.addr(1), "--join-token", token)
	}
	for i := from; i <= to; i++ {
		c.waitNodeState(fmt.Sprintf("node-%d", i), api.NodeState_NODE_STATE_READY)
	}
}

// waitNodeState waits until some manager reports the node in state.
func (c *cluster) waitNodeState(hostname string, state api.NodeState) {
	c.t.Helper()
	eventually(c.t, 60*time.Second, hostname+" is "+state.String(), func() error {
		n, err := c.anyControl().GetNode(ctxT(c.t, 5*time.Second), &api.GetNodeRequest{NodeId: hostname})
		if err != nil {
			return err
		}
		if got := n.Node.Status.GetState(); got != state {
			return fmt.Errorf("%s is %s", hostname, got)
		}
		return nil
	})
}

// anyControl returns a Control client on a live manager.
func (c *cluster) anyControl() api.ControlClient {
	c.t.Helper()
	for _, p := range c.liveNodes() {
		if c.isManagerProc(p) {
			return c.control(p.n)
		}
	}
	c.t.Fatal("no live manager")
	return nil
}

func (c *cluster) isManagerProc(p *proc) bool {
	_, err := os.Stat(p.sock)
	return err == nil
}

// setAvailability changes a node's availability through the Control API.
func (c *cluster) setAvailability(hostname string, a api.NodeAvailability) {
	c.t.Helper()
	eventually(c.t, 30*time.Second, "set "+hostname+" "+a.String(), func() error {
		ctl := c.anyControl()
		got, err := ctl.GetNode(ctxT(c.t, 5*time.Second), &api.GetNodeRequest{NodeId: hostname})
		if err != nil {
			return err
		}
		spec := got.Node.Spec
		spec.Availability = a
		_, err = ctl.UpdateNode(ctxT(c.t, 5*time.Second), &api.UpdateNodeRequest{NodeId: got.Node.Id, NodeVersion: got.Node.Meta.Version, Spec: spec})
		return err
	})
}

// simSpec is a replicated service spec of n sim tasks with quick restarts.
func simSpec(name string, replicas uint64) *api.ServiceSpec {
	return &api.ServiceSpec{
		Annotations: &api.Annotations{Name: name},
		Task: &api.TaskSpec{
			Container: &api.ContainerSpec{Image: "sim/" + name + ":1"},
			Restart:   &api.RestartPolicy{Delay: durationpb.New(100 * time.Millisecond)},
		},
		Mode:   &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
		Update: &api.UpdateConfig{Parallelism: 1, Monitor: durationpb.New(500 * time.Millisecond)},
	}
}

func (c *cluster) createService(spec *api.ServiceSpec) *api.Service {
	c.t.Helper()
	resp, err := c.anyControl().CreateService(ctxT(c.t, 10*time.Second), &api.CreateServiceRequest{Spec: spec})
	if err != nil {
		c.t.Fatalf("create service %s: %v", spec.GetAnnotations().GetName(), err)
	}
	return resp.Service
}

// updateService reads the service, lets change edit its spec and writes it
// back, retrying when another writer got there first.
func (c *cluster) updateService(name string, change func(*api.ServiceSpec)) *api.Service {
	c.t.Helper()
	var out *api.Service
	eventually(c.t, 30*time.Second, "update service "+name, func() error {
		ctl := c.anyControl()
		got, err := ctl.GetService(ctxT(c.t, 5*time.Second), &api.GetServiceRequest{ServiceId: name})
		if err != nil {
			return err
		}
		spec := proto.Clone(got.Service.Spec).(*api.ServiceSpec)
		change(spec)
		resp, err := ctl.UpdateService(ctxT(c.t, 5*time.Second), &api.UpdateServiceRequest{
			ServiceId: got.Service.Id, ServiceVersion: got.Service.Meta.Version, Spec: spec,
		})
		if err != nil {
			return err
		}
		out = resp.Service
		return nil
	})
	return out
}

func (c *cluster) service(name string) (*api.Service, error) {
	got, err := c.anyControl().GetService(ctxT(c.t, 5*time.Second), &api.GetServiceRequest{ServiceId: name})
	if err != nil {
		return nil, err
	}
	return got.Service, nil
}

// view is a snapshot of a service's tasks with node IDs resolved to
// hostnames.
type view struct {
	service *api.Service
	tasks   []*api.Task
	host    map[string]string // node ID → hostname
}

func (c *cluster) view(name string) (*view, error) {
	ctl := c.anyControl()
	svc, err := c.service(name)
	if err != nil {
		return nil, err
	}
	tasks, err := ctl.ListTasks(ctxT(c.t, 5*time.Second), &api.ListTasksRequest{ServiceIds: []string{svc.Id}})
	if err != nil {
		return nil, err
	}
	nodes, err := ctl.ListNodes(ctxT(c.t, 5*time.Second), &api.ListNodesRequest{})
	if err != nil {
		return nil, err
	}
	v := &view{service: svc, tasks: tasks.Tasks, host: map[string]string{}}
	for _, n := range nodes.Nodes {
		v.host[n.Id] = n.Description.GetHostname()
	}
	return v, nil
}

// running returns the tasks desired and observed RUNNING.
func (v *view) running() []*api.Task {
	var out []*api.Task
	for _, t := range v.tasks {
		if t.DesiredState == api.TaskState_TASK_STATE_RUNNING && t.Status.GetState() == api.TaskState_TASK_STATE_RUNNING {
			out = append(out, t)
		}
	}
	return out
}

// perHost counts running tasks by hostname.
func (v *view) perHost() map[string]int {
	out := map[string]int{}
	for _, t := range v.running() {
		out[v.host[t.NodeId]]++
	}
	return out
}

// slots returns the sorted slots of the running tasks.
func (v *view) slots() []uint64 {
	var out []uint64
	for _, t := range v.running() {
		out = append(out, t.Slot)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// onHost returns the tasks meant to run (desired ≤ RUNNING) on hostname.
func (v *view) meantToRunOn(hostname string) []*api.Task {
	var out []*api.Task
	for _, t := range v.tasks {
		if v.host[t.NodeId] == hostname && t.DesiredState <= api.TaskState_TASK_STATE_RUNNING {
			out = append(out, t)
		}
	}
	return out
}

// converged checks that exactly want tasks of the service's current spec
// run, one per slot.
func (v *view) converged(want int) error {
	run := v.running()
	if len(run) != want {
		return fmt.Errorf("%d of %d tasks running (%s)", len(run), want, v.summary())
	}
	seen := map[uint64]bool{}
	for _, t := range run {
		if t.SpecVersion != v.service.SpecVersion {
			return fmt.Errorf("task %s runs spec %d, the service is at %d", t.Id, t.SpecVersion, v.service.SpecVersion)
		}
		if t.Slot != 0 && seen[t.Slot] {
			return fmt.Errorf("slot %d runs twice", t.Slot)
		}
		seen[t.Slot] = true
	}
	return nil
}

func (v *view) summary() string {
	counts := map[string]int{}
	for _, t := range v.tasks {
		counts[fmt.Sprintf("%s/%s", shortState(t.DesiredState), shortState(t.Status.GetState()))]++
	}
	var parts []string
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(parts)
	return "desired/observed: " + strings.Join(parts, " ")
}

func shortState(s api.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

// waitConverged waits until the service runs want tasks of its current spec.
func (c *cluster) waitConverged(name string, want int, timeout time.Duration) *view {
	c.t.Helper()
	var v *view
	eventually(c.t, timeout, fmt.Sprintf("%s runs %d tasks", name, want), func() error {
		var err error
		if v, err = c.view(name); err != nil {
			return err
		}
		return v.converged(want)
	})
	return v
}

// waitUpdateState waits until the service's update status is state.
func (c *cluster) waitUpdateState(name string, state api.UpdateStatus_State, timeout time.Duration) *api.Service {
	c.t.Helper()
	var svc *api.Service
	eventually(c.t, timeout, fmt.Sprintf("%s update %s", name, state), func() error {
		var err error
		if svc, err = c.service(name); err != nil {
			return err
		}
		if got := svc.UpdateStatus.GetState(); got != state {
			return fmt.Errorf("update state %s (%s)", got, svc.UpdateStatus.GetMessage())
		}
		return nil
	})
	return svc
}
