package docker_test

import (
	"context"
	"fmt"

	"github.com/shoal/shoal/agent/exec/docker"
	"github.com/shoal/shoal/api"
)

// noNetworks attaches nothing: tasks get a netns with loopback alone. A
// node uses its CNI manager (agent/cni) instead.
type noNetworks struct{}

func (noNetworks) Attach(context.Context, docker.Sandbox, *api.Task) error { return nil }
func (noNetworks) Check(context.Context, docker.Sandbox, *api.Task) error  { return nil }
func (noNetworks) Detach(context.Context, docker.Sandbox) error            { return nil }

// A node makes one executor for its life; an agent drives each task's
// controller through its steps.
func ExampleNew() {
	e, err := docker.New(docker.Config{
		NodeID:   "node-1",
		Networks: noNetworks{},
		Pull:     docker.PullNever,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()

	ctx := context.Background()
	task := &api.Task{
		Id: api.NewID(), ServiceId: api.NewID(), ServiceName: "web", Slot: 1,
		Spec: &api.TaskSpec{Container: &api.ContainerSpec{Image: "shoal/echo:dev"}},
	}
	ctl, err := e.Controller(task)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ctl.Remove(ctx)
	for _, step := range []func(context.Context) error{ctl.Prepare, ctl.Start, ctl.Wait} {
		if err := step(ctx); err != nil {
			fmt.Println(err)
			return
		}
	}
}
