// Package docker is the executor that runs tasks as containers of the
// node's Docker engine. A task's workload is two containers:
//
//   - its sandbox: the pause image, the task's slot name as hostname. The
//     executor makes the task's network namespace itself and pins it to a
//     file (agent/netns, under Config.NetNSDir); the sandbox's process
//     joins it as it starts (the engine gives the sandbox no namespace of
//     its own: NetworkMode host) and holds it. The node's CNI manager
//     (Networks) attaches the task's networks to the pin while the
//     sandbox starts;
//   - its container, made from the task's ContainerSpec, sharing the
//     sandbox's namespace (NetworkMode container:<sandbox ID>).
//
// Both carry ownership labels (LabelTaskID, LabelNodeID, LabelRole …): the
// executor finds a task's workload by asking the engine, so an executor
// made after an agent or node restart controls the workloads an earlier
// one made. It meets the duties listed in agent/exec so:
//
//  1. Controller(t) only remembers t; every call looks t's containers up.
//     Prepare creates them only when t has no task container (a sandbox
//     left alone by an interrupted Prepare is detached and removed first).
//  2. Prepare returns at once when t's task container exists, Start when
//     it has started, running or exited.
//  3. ctx bounds the engine and Networks calls; containers run on. Two
//     things finish even when ctx ends, bounded by a minute of their own:
//     undoing a failed Prepare, and reading an exit (and releasing its
//     network) in Wait.
//  4. Shutdown and Remove tolerate containers that are stopped or gone,
//     and need only the task's ID.
//
// The network follows the task: once the task's container has ended
// (exited, stopped by Shutdown, failed to start), the sandbox is detached
// (Networks.Detach) and stopped, and the pin removed, before the end is
// reported, so a task
// reported finished holds no address on any network (a Detach that fails
// there is logged, and retried by Remove). Remove detaches
// again (Detach is idempotent) and removes both containers; a sandbox
// whose Detach failed is kept, so a later Remove retries it.
//
// A running workload this executor did not create (adopted after a
// restart) has its attachments checked (Networks.Check) on its first
// Prepare, Start or Wait; a failed check, or a sandbox that died under a
// running task, fails the task: its container is stopped and Wait returns
// an *exec.ExitError saying why.
//
// The pause image is built on first use from Config.PauseBinary
// (internal/dockerimage), so no registry is needed.
//
// It imports api, agent/exec and internal/dockerimage.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/api"
)

// Name is the executor's name in node descriptions.
const Name = "docker"

// DefaultNetNSDir holds, per node ID, the directory of the node's pinned
// task namespaces.
const DefaultNetNSDir = "/run/shoal/netns"

// Config sets up an Executor.
type Config struct {
	// Client talks to the engine; nil makes one from the environment
	// (DOCKER_HOST …), which negotiates the API version; Close closes it.
	Client *client.Client
	// NodeID is the node's ID: containers are labelled with it, and the
	// executor sees only containers labelled with it, so nodes may share
	// an engine.
	NodeID string
	// Networks attaches sandboxes to the tasks' networks.
	Networks Networks
	// Pull says when task images are pulled; "" means PullMissing.
	Pull PullPolicy
	// PauseImage is the sandboxes' image reference; "" means
	// "shoal/pause:<12 hex digits of the pause image's source digest>".
	PauseImage string
	// PauseBinary is the static binary the pause image runs as
	// [/<its base name>, "pause"]; "" means this program
	// (os.Executable), whose "pause" subcommand must block until SIGTERM
	// or SIGINT.
	PauseBinary string
	// NetNSDir is where the tasks' network namespaces are pinned, one file
	// per task ID; "" means DefaultNetNSDir/<NodeID>. Nothing else may
	// keep files there: the executor removes the pins of tasks it does not
	// run.
	NetNSDir string
	// ResolvConfDir holds the tasks' resolv.conf files, one per task ID,
	// written from Nameservers; "" (or Nameservers nil) leaves the
	// containers the engine's resolv.conf.
	ResolvConfDir string
	// Nameservers returns the DNS servers task t resolves through: its
	// node's embedded server on its networks.
	Nameservers func(t *api.Task) []netip.Addr
	// Log receives the executor's logs; nil means slog.Default().
	Log *slog.Logger
	// EngineLabels are reported with the engine's own labels, over them.
	EngineLabels map[string]string
}

// Executor runs tasks as Docker containers. It implements exec.Executor.
type Executor struct {
	cfg        Config
	cli        *client.Client
	ownsClient bool
	log        *slog.Logger

	pauseMu  sync.Mutex
	pauseRef string // the pause image, once known to be on the engine

	mu    sync.Mutex
	tasks map[string]*taskState // by task ID

	// attaching is held for reading from a sandbox's creation until its networks are attached,
	// and for writing while CollectGarbage lists the sandboxes and collects: a sandbox made
	// meanwhile would be missing from the list and lose its fresh attachments.
	attaching sync.RWMutex
}

var _ exec.Executor = (*Executor)(nil)

// New checks cfg and returns an executor; it does not contact the engine.
func New(cfg Config) (*Executor, error) {
	switch {
	case cfg.NodeID == "":
		return nil, errors.New("docker executor: no node ID")
	case strings.ContainsAny(cfg.NodeID, "/\x00") || cfg.NodeID == "." || cfg.NodeID == "..":
		return nil, fmt.Errorf("docker executor: node ID %q cannot name a directory", cfg.NodeID)
	case cfg.Networks == nil:
		return nil, errors.New("docker executor: no Networks to attach sandboxes")
	}
	if cfg.NetNSDir == "" {
		cfg.NetNSDir = filepath.Join(DefaultNetNSDir, cfg.NodeID)
	}
	if cfg.Pull == "" {
		cfg.Pull = PullMissing
	}
	if _, err := ParsePullPolicy(string(cfg.Pull)); err != nil {
		return nil, fmt.Errorf("docker executor: %w", err)
	}
	if cfg.PauseBinary == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("docker executor: find this program for the pause image: %w", err)
		}
		cfg.PauseBinary = self
	}
	if st, err := os.Stat(cfg.PauseBinary); err != nil {
		return nil, fmt.Errorf("docker executor: pause binary: %w", err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("docker executor: pause binary %s is not a regular file", cfg.PauseBinary)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.EngineLabels = maps.Clone(cfg.EngineLabels)
	e := &Executor{cfg: cfg, cli: cfg.Client, log: cfg.Log.With("executor", Name), tasks: make(map[string]*taskState)}
	if e.cli == nil {
		cli, err := client.New(client.FromEnv) // negotiates the API version
		if err != nil {
			return nil, fmt.Errorf("docker executor: engine client: %w", err)
		}
		e.cli, e.ownsClient = cli, true
	}
	return e, nil
}

// Close closes the engine client if New made it. Workloads keep running.
func (e *Executor) Close() error {
	if e.ownsClient {
		return e.cli.Close()
	}
	return nil
}

// Describe reports the engine's version, CPUs and memory, and its labels
// with Config.EngineLabels over them.
func (e *Executor) Describe(ctx context.Context) (*api.NodeDescription, error) {
	version, err := e.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker executor: engine version: %w", err)
	}
	info, err := e.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker executor: engine info: %w", err)
	}
	labels := make(map[string]string, len(info.Info.Labels)+len(e.cfg.EngineLabels))
	for _, kv := range info.Info.Labels {
		if k, v, ok := strings.Cut(kv, "="); ok {
			labels[k] = v
		}
	}
	maps.Copy(labels, e.cfg.EngineLabels)
	return &api.NodeDescription{
		EngineVersion: version.Version,
		Executor:      Name,
		Resources: &api.Resources{
			NanoCpus:    int64(info.Info.NCPU) * 1e9,
			MemoryBytes: info.Info.MemTotal,
		},
		EngineLabels: labels,
	}, nil
}

// Controller returns the controller of t's workload; t needs only its ID
// for Shutdown and Remove.
func (e *Executor) Controller(t *api.Task) (exec.Controller, error) {
	if t.GetId() == "" {
		return nil, errors.New("docker executor: a task without an ID")
	}
	return &controller{e: e, task: t}, nil
}

// Tasks lists the IDs of the tasks that have a container or a sandbox
// labelled with this node, running or not.
func (e *Executor) Tasks(ctx context.Context) ([]string, error) {
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelNodeID+"="+e.cfg.NodeID, LabelTaskID),
	})
	if err != nil {
		return nil, fmt.Errorf("docker executor: list containers: %w", err)
	}
	ids := make([]string, 0, len(list.Items))
	for _, c := range list.Items {
		if id := c.Labels[LabelTaskID]; id != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
