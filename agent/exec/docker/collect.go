package docker

// This file owns garbage collection of network attachments and netns pins: after the agent
// resyncs, the attachments of sandboxes that no longer exist (removed while no agent ran, or by
// hand) are released through the Networks' collector (CNI GC), and the netns pins of tasks that
// have no sandbox are removed.

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/netns"
)

// Collector is implemented by Networks that can release every attachment but those of the
// sandboxes listed (the CNI manager's GC).
type Collector interface {
	Collect(ctx context.Context, valid []Sandbox) error
}

var _ exec.Collector = (*Executor)(nil)

// CollectGarbage releases the attachments of sandboxes that no longer exist: it lists this
// node's sandboxes and hands them to the Networks' collector, if it has one. No sandbox is
// created meanwhile.
func (e *Executor) CollectGarbage(ctx context.Context) error {
	c, ok := e.cfg.Networks.(Collector)
	if !ok {
		return nil
	}
	e.attaching.Lock()
	defer e.attaching.Unlock()
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelNodeID+"="+e.cfg.NodeID, LabelRole+"="+RoleSandbox),
	})
	if err != nil {
		return fmt.Errorf("docker executor: list sandboxes: %w", err)
	}
	valid := make([]Sandbox, 0, len(list.Items))
	hasSandbox := make(map[string]bool, len(list.Items))
	for _, ct := range list.Items {
		valid = append(valid, Sandbox{ID: ct.ID})
		hasSandbox[ct.Labels[LabelTaskID]] = true
	}
	if err := c.Collect(ctx, valid); err != nil {
		return fmt.Errorf("docker executor: collect network attachments: %w", err)
	}
	// The pins of tasks without a sandbox: a Prepare stopped between the
	// two, or a sandbox removed while no agent ran.
	pins, err := netns.List(e.cfg.NetNSDir)
	if err != nil {
		return fmt.Errorf("docker executor: %w", err)
	}
	e.collectResolvConfs(hasSandbox)
	var errs []error
	for _, taskID := range pins {
		if hasSandbox[taskID] {
			continue
		}
		e.log.Info("gc: removing the netns pin of a task without a sandbox", "task", taskID)
		if err := netns.Unpin(e.pinPath(taskID)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("docker executor: %w", err)
	}
	return nil
}
