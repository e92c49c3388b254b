package e2e

// Networks through shoalctl on a real manager: create, list, refuse an
// overlapping subnet, attach a service, refuse removing a network in use.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNetworksThroughShoalctl(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(1)
	run := func(args ...string) string {
		t.Helper()
		out, err := c.shoalctl(1, args...)
		if err != nil {
			t.Fatalf("shoalctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	refused := func(want string, args ...string) {
		t.Helper()
		out, err := c.shoalctl(1, args...)
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("shoalctl %s: err %v, want a refusal saying %q:\n%s", strings.Join(args, " "), err, want, out)
		}
	}

	run("network", "create", "--subnet", "10.20.0.0/16", "--ip-range", "10.20.128.0/17", "front")
	run("network", "create", "--subnet", "10.30.0.0/24", "back")
	refused("overlap", "network", "create", "--subnet", "10.20.5.0/24", "clash")
	refused("front", "network", "create", "--subnet", "10.40.0.0/24", "front")
	ls := run("network", "ls")
	for _, want := range []string{"front", "10.20.0.0/16", "back", "10.30.0.0/24", "4096", "4097"} {
		if !strings.Contains(ls, want) {
			t.Fatalf("network ls lacks %q:\n%s", want, ls)
		}
	}

	run("service", "create", "--detach", "--name", "web", "--network", "front", "sim/web:1")
	refused("web", "network", "rm", "front")
	run("service", "rm", "web")
	// Refused while web's task is still stopping, then accepted.
	eventually(t, 30*time.Second, "network rm front", func() error {
		out, err := c.shoalctl(1, "network", "rm", "front")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if out := run("network", "ls"); strings.Contains(out, "front") {
		t.Fatalf("front still listed after rm:\n%s", out)
	}
}
