package testbed

// This file owns the sweep: deleting the namespaces that runs killed before their cleanups left
// behind, recognised by the pid in their names.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// PidRuns tells whether a process with this pid runs; a zombie does not. A pid reused by
// another process counts as running: a dead run's namespaces then wait for a sweep after that
// process ends.
func PidRuns(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may hold anything.
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	state := strings.Fields(string(rest))
	return len(state) == 0 || (state[0] != "Z" && state[0] != "X")
}

// Sweep deletes the network namespaces named scheme<pid>-<k>-... whose pid no longer runs —
// the leftovers of a run that was killed before its cleanups ran — and returns their names.
// Namespaces of runs that are alive, and every other namespace, are left alone. It returns the
// names it did delete also when deleting others failed.
func Sweep(scheme string) ([]string, error) {
	if scheme == "" {
		return nil, errors.New("sweep stale network namespaces: empty scheme")
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(scheme) + `(\d+)-\d+-`)
	names, err := ListNetns()
	if err != nil {
		return nil, fmt.Errorf("sweep stale network namespaces: %w", err)
	}
	var removed []string
	var errs []error
	for _, name := range names {
		m := re.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || PidRuns(pid) {
			continue
		}
		if err := DeleteNetns(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("sweep stale network namespaces: %w", err)
	}
	return removed, nil
}
