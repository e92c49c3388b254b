package testbed

// This file owns the check that the machine can hold a bed at all.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Check returns an error saying what a bed needs that this machine lacks — root, ip(8),
// nsenter(1), network namespaces — or nil when nothing is missing. Callers run it before their
// first bed: tests skip with its message, programs stop with it.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("the test bed needs root to create network namespaces")
	}
	for _, tool := range []string{"nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the test bed needs %s: %w", tool, err)
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("the test bed needs network namespaces, which this kernel lacks: %w", err)
	}
	return nil
}
