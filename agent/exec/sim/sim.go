// Package sim is an executor whose tasks run in memory, for benchmarks and
// tests of everything above the executor: a task "starts" after a delay,
// "runs" until stopped or for a set time, and exits with a set code; a
// fraction of tasks fail to start. A task's container env overrides the
// executor's settings for that task:
//
//	SIM_START_DELAY=100ms  how long Start takes
//	SIM_RUN_FOR=2s         exit after running this long (0: until stopped)
//	SIM_EXIT_CODE=1        the exit code when it exits by itself
//	SIM_FAIL_START=1       fail at start (0: never, whatever the rate)
//
// Workloads live in the Executor, not in an agent, so they keep running
// across agent sessions and role switches, as containers would; they do
// not survive the process. It imports api and agent/exec.
package sim

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/api"
)

// Name is the executor's name in node descriptions.
const Name = "sim"

// Config sets the simulated tasks' behaviour and the node's resources.
type Config struct {
	// StartDelay is how long a start takes.
	StartDelay time.Duration
	// RunFor is how long a task runs before it exits; 0 runs it until it
	// is stopped.
	RunFor time.Duration
	// ExitCode is a task's exit code when it exits by itself.
	ExitCode int
	// FailureRate is the fraction of tasks, 0 to 1, that fail at start.
	FailureRate float64
	// NanoCPUs and MemoryBytes are the resources reported; 0 means the
	// host's CPU count and memory.
	NanoCPUs    int64
	MemoryBytes int64
	// EngineLabels are reported as the engine's labels.
	EngineLabels map[string]string
}

// Executor runs simulated tasks. It implements exec.Executor.
type Executor struct {
	cfg   Config
	clock *timeline

	mu        sync.Mutex
	workloads map[string]*workload // by task ID
}

var _ exec.Executor = (*Executor)(nil)

// New returns an executor with no tasks.
func New(cfg Config) (*Executor, error) {
	switch {
	case cfg.StartDelay < 0:
		return nil, fmt.Errorf("sim: start delay %s is negative", cfg.StartDelay)
	case cfg.RunFor < 0:
		return nil, fmt.Errorf("sim: run time %s is negative", cfg.RunFor)
	case cfg.FailureRate < 0 || cfg.FailureRate > 1:
		return nil, fmt.Errorf("sim: failure rate %g is not between 0 and 1", cfg.FailureRate)
	case cfg.NanoCPUs < 0:
		return nil, fmt.Errorf("sim: CPUs %d is negative", cfg.NanoCPUs)
	case cfg.MemoryBytes < 0:
		return nil, fmt.Errorf("sim: memory %d is negative", cfg.MemoryBytes)
	}
	if cfg.NanoCPUs == 0 {
		cfg.NanoCPUs = int64(runtime.NumCPU()) * 1e9
	}
	if cfg.MemoryBytes == 0 {
		cfg.MemoryBytes = hostMemory()
	}
	cfg.EngineLabels = maps.Clone(cfg.EngineLabels)
	return &Executor{cfg: cfg, clock: newTimeline(), workloads: make(map[string]*workload)}, nil
}

// Describe reports the configured resources and labels.
func (e *Executor) Describe(context.Context) (*api.NodeDescription, error) {
	return &api.NodeDescription{
		EngineVersion: Name,
		Executor:      Name,
		Resources:     &api.Resources{NanoCpus: e.cfg.NanoCPUs, MemoryBytes: e.cfg.MemoryBytes},
		EngineLabels:  maps.Clone(e.cfg.EngineLabels),
	}, nil
}

// Controller returns the controller of t's workload.
func (e *Executor) Controller(t *api.Task) (exec.Controller, error) {
	if t.GetId() == "" {
		return nil, fmt.Errorf("sim: a task without an ID")
	}
	return &controller{e: e, task: t}, nil
}

// Tasks lists the tasks with a workload.
func (e *Executor) Tasks(context.Context) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.workloads)), nil
}

// params is how one task behaves: the executor's settings with the task's
// overrides.
type params struct {
	startDelay time.Duration
	runFor     time.Duration
	exitCode   int
	failStart  bool
}

// paramsFor applies t's SIM_* env overrides to the executor's settings.
func (e *Executor) paramsFor(t *api.Task) (params, error) {
	p := params{startDelay: e.cfg.StartDelay, runFor: e.cfg.RunFor, exitCode: e.cfg.ExitCode}
	failSet := false
	for _, kv := range t.GetSpec().GetContainer().GetEnv() {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "SIM_START_DELAY":
			p.startDelay, err = time.ParseDuration(v)
			if err == nil && p.startDelay < 0 {
				err = fmt.Errorf("negative")
			}
		case "SIM_RUN_FOR":
			p.runFor, err = time.ParseDuration(v)
			if err == nil && p.runFor < 0 {
				err = fmt.Errorf("negative")
			}
		case "SIM_EXIT_CODE":
			p.exitCode, err = strconv.Atoi(v)
		case "SIM_FAIL_START":
			p.failStart, err = strconv.ParseBool(v)
			failSet = true
		default:
			continue
		}
		if err != nil {
			return params{}, fmt.Errorf("sim: env %s: %w", kv, err)
		}
	}
	if !failSet && e.cfg.FailureRate > 0 {
		p.failStart = rand.Float64() < e.cfg.FailureRate
	}
	return p, nil
}

// hostMemory is the host's total memory from /proc/meminfo, 0 if unknown.
func hostMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
