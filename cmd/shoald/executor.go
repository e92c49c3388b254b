package main

// This file owns the executor flags: which executor runs the node's tasks,
// the sim executor's settings, the engine labels, and the one executor a
// node creates for its whole life (runRole hands it to every agent, so a
// role switch does not stop tasks).

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/agent/exec/sim"
	"github.com/shoal/shoal/internal/units"
)

// parseExecutorFlags checks the executor flags and fills the values parsed
// from them (memory size, engine labels).
func (c *nodeConfig) parseExecutorFlags() error {
	switch c.executor {
	case "sim":
	case "docker":
		return errors.New("--executor docker: not implemented yet; use --executor sim")
	default:
		return fmt.Errorf("--executor: %q is not an executor (sim or docker)", c.executor)
	}
	switch {
	case c.simStartDelay < 0:
		return fmt.Errorf("--sim-start-delay: %s is negative", c.simStartDelay)
	case c.simFailureRate < 0 || c.simFailureRate > 1 || math.IsNaN(c.simFailureRate):
		return fmt.Errorf("--sim-failure-rate: %g is not between 0 and 1", c.simFailureRate)
	case c.simCPUs < 0 || math.IsNaN(c.simCPUs) || math.IsInf(c.simCPUs, 0):
		return fmt.Errorf("--sim-cpus: %g is not a CPU count (0 means the host's)", c.simCPUs)
	}
	c.simMemoryBytes = 0
	if c.simMemory != "" {
		n, err := units.ParseBytes(c.simMemory)
		switch {
		case err != nil:
			return fmt.Errorf("--sim-memory: %q: %w", c.simMemory, err)
		case n == 0:
			return fmt.Errorf("--sim-memory: %q: a node offers some memory; leave the flag out for the host's", c.simMemory)
		}
		c.simMemoryBytes = n
	}
	c.labels = nil
	for _, kv := range c.engineLabels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("--engine-label: %q is not KEY=VALUE", kv)
		}
		if c.labels == nil {
			c.labels = make(map[string]string)
		}
		c.labels[k] = v
	}
	return nil
}

// newExecutor creates the node's executor from the parsed flags.
func (c *nodeConfig) newExecutor() (exec.Executor, error) {
	if c.executor != "sim" {
		return nil, fmt.Errorf("--executor %s: not implemented yet; use --executor sim", c.executor)
	}
	e, err := sim.New(sim.Config{
		StartDelay:  c.simStartDelay,
		FailureRate: c.simFailureRate,
		NanoCPUs:    int64(math.Round(c.simCPUs * 1e9)),
		MemoryBytes: c.simMemoryBytes,
		// The agent reports the flags' labels; the sim has none of its own.
	})
	if err != nil {
		return nil, fmt.Errorf("create the sim executor: %w", err)
	}
	return e, nil
}
