package main

// This file owns what the bed benchmarks that run real containers share: a docker cluster on bed
// nodes, one network, and services of shoal-echo tasks on it, all removed afterwards.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/testbed"
)

// echoBed is a docker cluster on bed nodes first..last with one network.
type echoBed struct {
	pc       *procCluster
	cli      *client.Client
	dir      string // the cluster's folder: node n's state is dir/node<n>
	netID    string
	services []string // names, for removing their containers
	done     func()   // removes the echo image
}

// startEchoBed builds the echo image, starts the cluster and creates network name on subnet.
func startEchoBed(ctx context.Context, bed *testbed.Bed, bin, dir string, first, last int, timeout time.Duration, name, subnet string) (*echoBed, error) {
	cli, done, err := echoImage(ctx, bin, timeout)
	if err != nil {
		return nil, err
	}
	eb := &echoBed{cli: cli, done: done, dir: filepath.Join(dir, "docker")}
	eb.pc, err = bedCluster(ctx, bed, bin, eb.dir, first, last, timeout,
		"--executor", "docker", "--cni-bin-dir", filepath.Join(bin, "cni"), "--pull", "never")
	if err != nil {
		done()
		return nil, err
	}
	resp, err := eb.ctl().CreateNetwork(ctx, &api.CreateNetworkRequest{Spec: &api.NetworkSpec{
		Annotations: &api.Annotations{Name: name}, Driver: "overlay",
		Ipam: []*api.IPAMConfig{{Subnet: subnet}}}})
	if err != nil {
		eb.close()
		return nil, fmt.Errorf("create the network: %w", err)
	}
	eb.netID = resp.Network.Id
	return eb, nil
}

func (eb *echoBed) ctl() api.ControlClient { return eb.pc.procs[0].ctl }

// service creates a service of replicas echo tasks on the network; its name gets this process's
// ID.
func (eb *echoBed) service(ctx context.Context, name string, replicas uint64) (*api.Service, error) {
	name = fmt.Sprintf("%s-%d", name, os.Getpid())
	eb.services = append(eb.services, name)
	resp, err := eb.ctl().CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Annotations: &api.Annotations{Name: name},
		Task: &api.TaskSpec{Container: &api.ContainerSpec{Image: benchImage},
			Networks: []*api.NetworkAttachmentConfig{{Target: eb.netID}}},
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: replicas}},
	}})
	if err != nil {
		return nil, fmt.Errorf("create service %s: %w", name, err)
	}
	return resp.Service, nil
}

// pin is where task t's netns is pinned, t on bed node n.
func (eb *echoBed) pin(n int, t *api.Task) string {
	return filepath.Join(eb.dir, fmt.Sprintf("node%d", n), "netns", t.Id)
}

// close stops the cluster and removes its containers, pins and the image.
func (eb *echoBed) close() {
	eb.pc.close()
	for _, s := range eb.services {
		removeBenchContainers(eb.cli, s)
	}
	for _, p := range eb.pc.procs {
		unpinAll(filepath.Join(p.dir, "netns"))
	}
	eb.done()
}
