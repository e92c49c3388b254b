package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("pinning a netns needs root (CAP_SYS_ADMIN)")
	}
}

// testDir is a directory for pins, unmounted and removed after the test.
func testDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("/run/shoal-test/netns", fmt.Sprintf("%s-%d", t.Name(), os.Getpid()))
	t.Cleanup(func() {
		names, _ := List(dir)
		for _, n := range names {
			_ = Unpin(filepath.Join(dir, n))
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// inNS runs ip with args in the namespace at path.
func inNS(t *testing.T, path string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + path, "ip"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v in %s: %v: %s", args, path, err, out)
	}
	return string(out)
}

func TestPinOutlivesItsMaker(t *testing.T) {
	needRoot(t)
	dir := testDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := Pin(p); err != nil {
			t.Fatal(err)
		}
		if !Pinned(p) {
			t.Fatalf("%s is not a netns after Pin", p)
		}
	}
	if same, err := Same(a, b); err != nil || same {
		t.Fatalf("Same(a, b) = %v, %v; want two namespaces", same, err)
	}
	if same, err := Same(a, "/proc/self/ns/net"); err != nil || same {
		t.Fatalf("Same(pin, own netns) = %v, %v; want a new namespace", same, err)
	}
	// Every thread of this process is still in its own namespace.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/ns/net", os.Getpid()))
	for _, task := range tasks {
		if same, err := Same(task, a); err == nil && same {
			t.Fatalf("thread %s was left in a pinned namespace", task)
		}
	}
	if out := inNS(t, a, "-br", "link"); !strings.Contains(out, "<LOOPBACK,UP") {
		t.Fatalf("lo is not up in the pin: %s", out)
	}
	// Nothing runs in it; the namespace holds state.
	inNS(t, a, "link", "add", "tbr0", "type", "bridge")
	if out := inNS(t, a, "-br", "link"); !strings.Contains(out, "tbr0") {
		t.Fatalf("links in the pin: %s", out)
	}
	if out := inNS(t, b, "-br", "link"); strings.Contains(out, "tbr0") {
		t.Fatalf("the second pin shares the first's links: %s", out)
	}
	names, err := List(dir)
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("List = %v, %v", names, err)
	}
}

func TestPinReplaces(t *testing.T) {
	needRoot(t)
	dir := testDir(t)
	p := filepath.Join(dir, "x")
	if err := Pin(p); err != nil {
		t.Fatal(err)
	}
	inNS(t, p, "link", "add", "tbr0", "type", "bridge")
	if err := Pin(p); err != nil {
		t.Fatal(err)
	}
	if out := inNS(t, p, "-br", "link"); strings.Contains(out, "tbr0") {
		t.Fatalf("Pin over a pin kept the old namespace: %s", out)
	}
	// A plain file left by a Pin that failed.
	if err := Unpin(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if Pinned(p) {
		t.Fatal("a plain file counts as pinned")
	}
	if err := Pin(p); err != nil || !Pinned(p) {
		t.Fatalf("Pin over a plain file: %v (pinned %v)", err, Pinned(p))
	}
}

func TestUnpinIsIdempotent(t *testing.T) {
	needRoot(t)
	dir := testDir(t)
	p := filepath.Join(dir, "y")
	if err := Pin(p); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := Unpin(p); err != nil {
			t.Fatalf("Unpin #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("the pin's file is still there: %v", err)
	}
	if names, err := List(filepath.Join(dir, "none")); err != nil || len(names) != 0 {
		t.Fatalf("List of a missing dir = %v, %v", names, err)
	}
}
