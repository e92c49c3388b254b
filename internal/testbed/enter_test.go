package testbed

// This file tests entering a namespace: the nsenter command line, and RunIn's failures.

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNsenterArgv checks that NsenterArgv enters the network namespace only and keeps argv
// intact, also when it looks like nsenter's own flags.
func TestNsenterArgv(t *testing.T) {
	tests := []struct {
		name string
		path string
		argv []string
		want []string
	}{
		{"a pin file", "/run/netns/a-n1", []string{"ip", "addr"},
			[]string{"nsenter", "--net=/run/netns/a-n1", "--", "ip", "addr"}},
		{"a process's namespace", "/proc/42/ns/net", []string{"shoald", "--mount=x"},
			[]string{"nsenter", "--net=/proc/42/ns/net", "--", "shoald", "--mount=x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := slices.Clone(tt.argv)
			if got := NsenterArgv(tt.path, argv); !slices.Equal(got, tt.want) {
				t.Errorf("NsenterArgv(%q, %q) = %q, want %q", tt.path, tt.argv, got, tt.want)
			}
			if !slices.Equal(argv, tt.argv) {
				t.Errorf("NsenterArgv changed its argv to %q", argv)
			}
		})
	}
}

// TestRunInFails checks that RunIn reports a command it cannot run, naming the namespace, and
// returns the output it got.
func TestRunInFails(t *testing.T) {
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skipf("RunIn needs nsenter: %v", err)
	}
	missing := NetnsPath("shoal-testbed-no-such-namespace")
	tests := []struct {
		name string
		argv []string
	}{
		{"no command", nil},
		{"a namespace that does not exist", []string{"true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := RunIn(context.Background(), missing, tt.argv...)
			if err == nil {
				t.Fatalf("RunIn(%s, %q) succeeded: %s", missing, tt.argv, out)
			}
			if !strings.Contains(err.Error(), missing) {
				t.Errorf("RunIn's error does not name the namespace %s: %v", missing, err)
			}
			if len(tt.argv) > 0 && !strings.Contains(out, "nsenter") {
				t.Errorf("RunIn returned %q, want nsenter's message", out)
			}
		})
	}
}
