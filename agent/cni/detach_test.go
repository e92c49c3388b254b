package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/shoal/shoal/api"
)

// After an agent restart the new Manager knows no network (or a changed one),
// and has another MTU: DetachSandbox still DELs each chain that was added,
// with the configuration and arguments it was added with.
func TestDetachSandboxAfterRestart(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t, "fake-extra")
	before := env.manager(t, 1400)
	before.SetNetworks([]*api.Network{
		testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "fake-extra", ConfigJson: `{"marker": "as added"}`}),
		testNetwork(net2, []string{"198.18.2.0/24"}),
	})
	if err := before.AttachTask(ctx, "sandbox1", netns, testTask("task1", on(net1, "198.18.0.5/24"), on(net2, "198.18.2.9/24"))); err != nil {
		t.Fatal(err)
	}
	env.calls(t)

	after := env.manager(t, 9000)
	// net1 changed meanwhile: its extra plugin is gone. net2 is not known.
	after.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"})})
	if err := after.DetachSandbox(ctx, "sandbox1", ""); err != nil {
		t.Fatal(err)
	}
	calls := env.calls(t)
	assertBriefs(t, "DetachSandbox", calls, []brief{
		{"DEL", bridgePlugin, net2, "sandbox1", "eth1"},
		{"DEL", "fake-extra", net1, "sandbox1", "eth0"},
		{"DEL", bridgePlugin, net1, "sandbox1", "eth0"},
	})
	for i, c := range calls {
		if c.Netns != "" || c.Args != taskArgsWant || !c.PrevResult {
			t.Errorf("DEL %d: netns %q, args %q, prevResult given %v; want \"\", %q, true", i, c.Netns, c.Args, c.PrevResult, taskArgsWant)
		}
		var conf struct {
			MTU    int    `json:"mtu"`
			Marker string `json:"marker"`
		}
		if err := json.Unmarshal(c.Config, &conf); err != nil {
			t.Fatal(err)
		}
		if c.Type == bridgePlugin && conf.MTU != 1400 {
			t.Errorf("DEL %d: shoal-bridge mtu %d, want the cached 1400", i, conf.MTU)
		}
		if c.Type == "fake-extra" && conf.Marker != "as added" {
			t.Errorf("DEL %d: extra plugin config %s, want the cached one", i, c.Config)
		}
	}
	assertRuntimeConfig(t, calls[2], `{"ips": ["198.18.0.5/24"], "mac": "02:42:c6:12:00:05"}`)
	assertCached(t, env)

	if err := after.DetachSandbox(ctx, "sandbox1", ""); err != nil {
		t.Errorf("DetachSandbox again = %v, want nil", err)
	}
	assertBriefs(t, "DetachSandbox again", env.calls(t), nil)
}

// DetachSandbox touches only the sandbox's own attachments.
func TestDetachSandboxLeavesOthers(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	m := env.manager(t, 0)
	m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"})})
	for i, sb := range []string{"sandbox1", "sandbox10", "xsandbox1"} {
		task := testTask("task1", on(net1, []string{"198.18.0.5/24", "198.18.0.6/24", "198.18.0.7/24"}[i]))
		if err := m.AttachTask(ctx, sb, netns, task); err != nil {
			t.Fatal(err)
		}
	}
	env.calls(t)
	if err := m.DetachSandbox(ctx, "sandbox1", netns); err != nil {
		t.Fatal(err)
	}
	assertBriefs(t, "DetachSandbox", env.calls(t), []brief{{"DEL", bridgePlugin, net1, "sandbox1", "eth0"}})
	assertCached(t, env, net1+"/sandbox10/eth0", net1+"/xsandbox1/eth0")
}

func TestGC(t *testing.T) {
	const net3 = "n3m4n5b6v7c8x9z0l1k2j3h4g"
	ctx := context.Background()
	env := newEnv(t, "fake-extra")
	before := env.manager(t, 0)
	before.SetNetworks([]*api.Network{
		testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "fake-extra"}),
		testNetwork(net2, []string{"198.18.2.0/24"}),
	})
	for _, a := range []struct {
		sandbox, netns string
		task           *api.Task
	}{
		{"sandboxA", netns + "-A", testTask("task1", on(net1, "198.18.0.5/24"))},
		{"sandboxB", netns + "-B", testTask("task2", on(net1, "198.18.0.6/24"), on(net2, "198.18.2.6/24"))},
		{"sandboxC", netns + "-C", testTask("task3", on(net2, "198.18.2.7/24"))},
	} {
		if err := before.AttachTask(ctx, a.sandbox, a.netns, a.task); err != nil {
			t.Fatal(err)
		}
	}
	env.calls(t)

	// After a restart the node knows net1 and net3 (no attachments); net2 only
	// the cache remembers.
	after := env.manager(t, 0)
	after.SetNetworks([]*api.Network{
		testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "fake-extra"}),
		testNetwork(net3, []string{"198.18.4.0/24"}),
	})
	if err := after.GC(ctx, []string{"sandboxA", "sandboxC"}); err != nil {
		t.Fatal(err)
	}
	calls := env.calls(t)
	assertBriefs(t, "GC", calls, []brief{
		{"DEL", "fake-extra", net1, "sandboxB", "eth0"},
		{"DEL", bridgePlugin, net1, "sandboxB", "eth0"},
		{"GC", bridgePlugin, net1, "", ""},
		{"GC", "fake-extra", net1, "", ""},
		{"DEL", bridgePlugin, net2, "sandboxB", "eth1"},
		{"GC", bridgePlugin, net2, "", ""},
		{"GC", bridgePlugin, net3, "", ""},
	})
	wantValid := map[string][]types.GCAttachment{
		net1: {{ContainerID: "sandboxA", IfName: "eth0"}},
		net2: {{ContainerID: "sandboxC", IfName: "eth0"}},
		net3: nil,
	}
	for _, c := range calls {
		switch c.Command {
		case "DEL":
			// No namespace: the sandbox is gone, its cached path may be another process's now.
			if c.Netns != "" || c.Args != "IgnoreUnknown=1;SHOAL_TASK=task2;SHOAL_SERVICE=web;SHOAL_SLOT=3" {
				t.Errorf("GC's DEL of %s: netns %q, args %q; want no netns and the cached args", c.Name, c.Netns, c.Args)
			}
		case "GC":
			if !reflect.DeepEqual(c.ValidAttachments, wantValid[c.Name]) {
				t.Errorf("GC of %s %s: valid attachments %v, want %v", c.Type, c.Name, c.ValidAttachments, wantValid[c.Name])
			}
			if !hasKey(t, c.Config, "cni.dev/valid-attachments") {
				t.Errorf("GC of %s %s: no cni.dev/valid-attachments in %s", c.Type, c.Name, c.Config)
			}
		}
	}
	assertCached(t, env, net1+"/sandboxA/eth0", net2+"/sandboxC/eth0")
}

// GC with no valid sandbox empties the cache, and a second GC only asks the
// plugins to collect.
func TestGCNothingValid(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	m := env.manager(t, 0)
	m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"})})
	if err := m.AttachTask(ctx, "sandboxA", netns, testTask("task1", on(net1, "198.18.0.5/24"))); err != nil {
		t.Fatal(err)
	}
	env.calls(t)
	for _, want := range [][]brief{
		{{"DEL", bridgePlugin, net1, "sandboxA", "eth0"}, {"GC", bridgePlugin, net1, "", ""}},
		{{"GC", bridgePlugin, net1, "", ""}},
	} {
		if err := m.GC(ctx, nil); err != nil {
			t.Fatal(err)
		}
		assertBriefs(t, "GC", env.calls(t), want)
		assertCached(t, env)
	}
}

func hasKey(t *testing.T, obj json.RawMessage, key string) bool {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatal(err)
	}
	_, ok := m[key]
	return ok
}

// GC running while tasks attach: every GC call a plugin gets lists as valid
// each attachment whose ADD it saw before (none is half added, uncached, and
// so collected), and no DEL happens, all sandboxes being valid.
func TestGCDuringAttaches(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	m := env.manager(t, 0)
	m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"})})
	const sandboxes = 12
	var valid []string
	for i := range sandboxes {
		valid = append(valid, fmt.Sprintf("sandbox%02d", i))
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2*sandboxes)
	for i, sb := range valid {
		wg.Go(func() {
			errs <- m.AttachTask(ctx, sb, netns, testTask(fmt.Sprintf("task%02d", i), on(net1, fmt.Sprintf("198.18.0.%d/24", 10+i))))
		})
		wg.Go(func() { errs <- m.GC(ctx, valid) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	added := map[types.GCAttachment]bool{}
	for _, c := range env.calls(t) {
		switch c.Command {
		case "ADD":
			added[types.GCAttachment{ContainerID: c.ContainerID, IfName: c.IfName}] = true
		case "GC":
			listed := map[types.GCAttachment]bool{}
			for _, a := range c.ValidAttachments {
				listed[a] = true
			}
			for a := range added {
				if !listed[a] {
					t.Errorf("a GC call left out %v, added before it", a)
				}
			}
		default:
			t.Errorf("unexpected %s of %s", c.Command, c.ContainerID)
		}
	}
	if len(added) != sandboxes {
		t.Errorf("%d ADDs, want %d", len(added), sandboxes)
	}
}
