package cni

// The tests run the Manager against testdata/fakeplugin, built once here and
// installed per test under the plugin types a conflist names, in a per-test bin
// directory; each copy records its calls to calls.jsonl in that directory.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/shoal/shoal/api"
)

// fakePlugin is the path of the built testdata/fakeplugin.
var fakePlugin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shoal-cni-fakeplugin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create build directory:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	fakePlugin = filepath.Join(dir, "fakeplugin")
	build := exec.Command("go", "build", "-o", fakePlugin, "./testdata/fakeplugin")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testdata/fakeplugin: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// call is one call a fake plugin recorded (testdata/fakeplugin's Call).
type call struct {
	Command          string               `json:"command"`
	Type             string               `json:"type"`
	Name             string               `json:"name"`
	CNIVersion       string               `json:"cniVersion"`
	ContainerID      string               `json:"containerID"`
	Netns            string               `json:"netns"`
	IfName           string               `json:"ifName"`
	Args             string               `json:"args"`
	RuntimeConfig    json.RawMessage      `json:"runtimeConfig,omitempty"`
	PrevResult       bool                 `json:"prevResult"`
	ValidAttachments []types.GCAttachment `json:"validAttachments,omitempty"`
	Config           json.RawMessage      `json:"config"`
}

// testEnv is one test's plugin and cache directories.
type testEnv struct {
	binDir, cacheDir string
}

// newEnv installs the fake plugin as shoal-bridge and as each of extraTypes.
func newEnv(t *testing.T, extraTypes ...string) *testEnv {
	t.Helper()
	e := &testEnv{binDir: t.TempDir(), cacheDir: filepath.Join(t.TempDir(), "cni-cache")}
	bin, err := os.ReadFile(fakePlugin)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range append([]string{bridgePlugin}, extraTypes...) {
		if err := os.WriteFile(filepath.Join(e.binDir, typ), bin, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// manager is a new Manager on e's directories, as after an agent (re)start.
func (e *testEnv) manager(t *testing.T, mtu int) *Manager {
	t.Helper()
	m, err := New(Config{BinDirs: []string{e.binDir}, CacheDir: e.cacheDir, MTU: mtu, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// calls returns the calls recorded so far and forgets them.
func (e *testEnv) calls(t *testing.T) []call {
	t.Helper()
	path := filepath.Join(e.binDir, "calls.jsonl")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var calls []call
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("decode recorded call %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	return calls
}

// cached returns the (network, sandbox, ifname) of every cached attachment.
func (e *testEnv) cached(t *testing.T) []string {
	t.Helper()
	m := e.manager(t, 0)
	atts, err := m.cni.GetCachedAttachments("")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range atts {
		out = append(out, a.Network+"/"+a.ContainerID+"/"+a.IfName)
	}
	return out
}

// brief is what most assertions compare of a call.
type brief struct {
	Command, Type, Network, ContainerID, IfName string
}

func briefs(calls []call) []brief {
	out := make([]brief, 0, len(calls))
	for _, c := range calls {
		out = append(out, brief{c.Command, c.Type, c.Name, c.ContainerID, c.IfName})
	}
	return out
}

// testNetwork is a network with one subnet per entry of subnets and the given
// extra plugins.
func testNetwork(id string, subnets []string, plugins ...*api.CNIPlugin) *api.Network {
	spec := &api.NetworkSpec{Annotations: &api.Annotations{Name: "net-" + id[:4]}, Driver: "overlay", Plugins: plugins}
	for _, s := range subnets {
		spec.Ipam = append(spec.Ipam, &api.IPAMConfig{Subnet: s})
	}
	return &api.Network{Id: id, Meta: &api.Meta{Version: 1}, Spec: spec}
}

// testTask is slot 3 of service "web" with an address on each network.
func testTask(id string, attachments ...*api.NetworkAttachment) *api.Task {
	return &api.Task{Id: id, ServiceId: "svc1", ServiceName: "web", Slot: 3, Networks: attachments}
}

func on(networkID, address string) *api.NetworkAttachment {
	return &api.NetworkAttachment{NetworkId: networkID, Address: address}
}

// testLogger sends the Manager's records to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
