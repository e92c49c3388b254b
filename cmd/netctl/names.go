package main

// This file owns what listings look up besides the bindings: the names of
// the networks and nodes their IDs name, and the tasks that hold or held
// an address. A listing asks only for what its rows need.

import (
	"cmp"
	"context"
	"fmt"
	"maps"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

// directory maps the IDs a listing shows to names: network ID → network
// name, node ID → hostname. An ID it lacks shows shortened.
type directory struct {
	networks map[string]string
	hosts    map[string]string
}

func (d directory) network(id string) string { return cmp.Or(d.networks[id], cli.ShortID(id)) }

func (d directory) host(id string) string { return cmp.Or(d.hosts[id], cli.ShortID(id)) }

// lookUpNetworks fills in the network names.
func (d *directory) lookUpNetworks(ctx context.Context, c api.ControlClient) error {
	resp, err := c.ListNetworks(ctx, &api.ListNetworksRequest{})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	d.networks = networkNames(resp.GetNetworks())
	return nil
}

func networkNames(networks []*api.Network) map[string]string {
	names := make(map[string]string, len(networks))
	for _, n := range networks {
		names[n.GetId()] = n.GetSpec().GetAnnotations().GetName()
	}
	return names
}

// lookUpHosts fills in the hostnames.
func (d *directory) lookUpHosts(ctx context.Context, c api.ControlClient) error {
	resp, err := c.ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	d.hosts = make(map[string]string, len(resp.GetNodes()))
	for _, n := range resp.GetNodes() {
		d.hosts[n.GetId()] = n.GetDescription().GetHostname()
	}
	return nil
}

// tasksOf returns the tasks of the services, by ID: those the manager still
// has (the reaper deletes old ones). A service the manager no longer knows
// has no tasks.
func tasksOf(ctx context.Context, c api.ControlClient, serviceIDs []string) (map[string]*api.Task, error) {
	tasks := map[string]*api.Task{}
	if len(serviceIDs) == 0 {
		return tasks, nil
	}
	resp, err := c.ListTasks(ctx, &api.ListTasksRequest{ServiceIds: serviceIDs})
	if status.Code(err) == codes.NotFound && len(serviceIDs) > 1 {
		// One of them is gone: ask for each.
		for _, id := range serviceIDs {
			more, err := tasksOf(ctx, c, []string{id})
			if err != nil {
				return nil, err
			}
			maps.Copy(tasks, more)
		}
		return tasks, nil
	}
	if status.Code(err) == codes.NotFound {
		return tasks, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	for _, t := range resp.GetTasks() {
		tasks[t.GetId()] = t
	}
	return tasks, nil
}
