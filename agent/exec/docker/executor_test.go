package docker

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pause")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	nets := &fakeNetworks{}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no node", Config{Networks: nets, PauseBinary: bin}, "no node ID"},
		{"no networks", Config{NodeID: "n1", PauseBinary: bin}, "no Networks"},
		{"bad pull policy", Config{NodeID: "n1", Networks: nets, PauseBinary: bin, Pull: "sometimes"}, "pull policy"},
		{"missing pause binary", Config{NodeID: "n1", Networks: nets, PauseBinary: filepath.Join(dir, "nope")}, "pause binary"},
		{"pause binary is a folder", Config{NodeID: "n1", Networks: nets, PauseBinary: dir}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error saying %q", err, tt.want)
			}
		})
	}
	e, err := New(Config{NodeID: "n1", Networks: nets, PauseBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.cfg.Pull != PullMissing || e.cfg.Log == nil || e.cli == nil {
		t.Errorf("defaults: pull %q, log %v, client %v", e.cfg.Pull, e.cfg.Log, e.cli)
	}
	if _, err := e.Controller(nil); err == nil {
		t.Error("Controller(nil): no error")
	}
}

func TestDescribe(t *testing.T) {
	needEngine(t)
	e, err := New(Config{Client: engine, NodeID: "n1", Networks: &fakeNetworks{}, PauseBinary: pauseBin,
		EngineLabels: map[string]string{"zone": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	version, err := engine.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Executor != "docker" || d.EngineVersion != version.Version {
		t.Errorf("executor %q version %q, want docker %q", d.Executor, d.EngineVersion, version.Version)
	}
	// The engine runs on this host.
	if got, want := d.Resources.GetNanoCpus(), int64(runtime.NumCPU())*1e9; got != want {
		t.Errorf("CPUs %d, want %d", got, want)
	}
	if d.Resources.GetMemoryBytes() <= 0 {
		t.Errorf("memory %d, want the engine's", d.Resources.GetMemoryBytes())
	}
	if d.EngineLabels["zone"] != "a" {
		t.Errorf("engine labels %v lack zone=a", d.EngineLabels)
	}
}

// TestPauseImageRebuilt: a pause image removed behind the executor's back
// is built again on the next Prepare.
func TestPauseImageRebuilt(t *testing.T) {
	needEngine(t)
	ref := "shoal-test/pause:" + randomSuffix()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := engine.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove %s: %v", ref, err)
		}
	})
	nodeID := "test-node-" + randomSuffix()
	t.Cleanup(func() { removeNodeContainers(t, nodeID) })
	e, err := New(Config{Client: engine, NodeID: nodeID, Networks: &fakeNetworks{}, PauseImage: ref, PauseBinary: pauseBin, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removePins(t, e.cfg.NetNSDir) }) // registered last: runs before the containers go
	ctx := context.Background()
	first := mustController(t, e, echoTask(1))
	if err := first.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
		t.Fatalf("remove the pause image: %v", err)
	}
	task := echoTask(2)
	if err := mustController(t, e, task).Prepare(ctx); err != nil {
		t.Fatalf("Prepare after the pause image was removed: %v", err)
	}
	if got := inspect(t, sandboxName(task, nodeID)).Config.Image; got != ref {
		t.Errorf("sandbox image %q, want %q", got, ref)
	}
}
