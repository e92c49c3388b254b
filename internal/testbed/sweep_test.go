package testbed

// This file tests PidRuns and Sweep: a dead run's namespaces go, a live run's and strangers'
// stay.

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatalf("run a process to get a dead pid: %v", err)
	}
	return dead.Process.Pid
}

// zombiePid returns the pid of a process that is killed and not yet waited for — as a killed
// run's process is until its parent reaps it. It is reaped when t ends.
func zombiePid(t *testing.T) int {
	t.Helper()
	zombie := exec.Command("sleep", "600")
	if err := zombie.Start(); err != nil {
		t.Fatalf("start a process to make a zombie: %v", err)
	}
	t.Cleanup(func() { _ = zombie.Wait() })
	if err := zombie.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	pid := zombie.Process.Pid
	waitFor(t, 10*time.Second, "a zombie", func() error {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return err
		}
		if !slices.Contains([]string{"Z", "X"}, stateOf(stat)) {
			return fmt.Errorf("pid %d is not a zombie: %s", pid, stat)
		}
		return nil
	})
	return pid
}

// stateOf returns the state field of a /proc/<pid>/stat line.
func stateOf(stat []byte) string {
	for i := len(stat) - 1; i >= 0; i-- {
		if stat[i] == ')' && i+2 < len(stat) {
			return string(stat[i+2])
		}
	}
	return ""
}

// TestPidRuns checks PidRuns on this process, a reaped one, a zombie and pids that cannot be.
func TestPidRuns(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		want bool
	}{
		{"this process", os.Getpid(), true},
		{"a reaped process", deadPid(t), false},
		{"a zombie", zombiePid(t), false},
		{"pid 0", 0, false},
		{"a negative pid", -1, false},
	}
	for _, tt := range tests {
		if got := PidRuns(tt.pid); got != tt.want {
			t.Errorf("PidRuns(%d) (%s) = %v, want %v", tt.pid, tt.name, got, tt.want)
		}
	}
}

// TestSweepRemovesDeadRunsNamespaces checks that Sweep deletes the namespaces of runs whose
// process is gone, and only those.
func TestSweepRemovesDeadRunsNamespaces(t *testing.T) {
	requireBed(t)
	dead, zombie := deadPid(t), zombiePid(t)
	tests := []struct {
		name  string
		ns    string
		swept bool
	}{
		{"a dead run's underlay", fmt.Sprintf("%s%d-0-ul", testScheme, dead), true},
		{"a dead run's node", fmt.Sprintf("%s%d-0-n7", testScheme, dead), true},
		{"a run whose process is a zombie", fmt.Sprintf("%s%d-0-ul", testScheme, zombie), true},
		{"this run's node", fmt.Sprintf("%s%d-0-sweep", testScheme, os.Getpid()), false},
		{"not of the scheme's form", fmt.Sprintf("%snopid-%d-0-ul", testScheme, dead), false},
		{"another scheme", fmt.Sprintf("shoal-testbed-other-%d-0-ul", dead), false},
	}
	for _, tt := range tests {
		if err := AddNetns(tt.ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := DeleteNetns(tt.ns); err != nil {
				t.Error(err)
			}
		})
	}
	removed, err := Sweep(testScheme)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slices.Contains(removed, tt.ns); got != tt.swept {
				t.Errorf("%s: swept %v, want %v (swept: %v)", tt.ns, got, tt.swept, removed)
			}
			if NetnsExists(tt.ns) == tt.swept {
				t.Errorf("%s: exists %v after the sweep, want %v", tt.ns, !tt.swept, !tt.swept)
			}
		})
	}
	if _, err := Sweep(""); err == nil {
		t.Errorf("Sweep with an empty scheme succeeded")
	}
}

// TestNetnsAddDeleteList checks that a namespace made by AddNetns is listed, has lo up, and is
// gone after DeleteNetns, which a second time is no error.
func TestNetnsAddDeleteList(t *testing.T) {
	requireBed(t)
	name := fmt.Sprintf("%s%d-0-netns", testScheme, os.Getpid())
	if err := AddNetns(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteNetns(name) })
	names, err := ListNetns()
	if err != nil || !slices.Contains(names, name) {
		t.Errorf("ListNetns() = %v, %v; want it to hold %s", names, err, name)
	}
	if err := AddNetns(name); err == nil {
		t.Errorf("AddNetns of an existing namespace succeeded")
	}
	if !NetnsExists(name) {
		t.Fatalf("a failed AddNetns deleted the existing namespace %s", name)
	}
	out, err := RunIn(t.Context(), NetnsPath(name), "ip", "-br", "link", "show", "lo")
	if err != nil || !strings.Contains(out, ",UP") {
		t.Errorf("lo in %s is not up: %v\n%s", name, err, out)
	}
	for i := range 2 {
		if err := DeleteNetns(name); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	if NetnsExists(name) {
		t.Errorf("%s exists after DeleteNetns", name)
	}
}
