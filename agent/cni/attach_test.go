package cni

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/shoal/shoal/api"
)

const (
	net1  = "n1q2w3e4r5t6y7u8i9o0p1a2s"
	net2  = "n2d3f4g5h6j7k8l9z0x1c2v3b"
	netns = "/run/netns/shoal-cni-test-not-entered" // the fake plugin never enters it
	// taskArgsWant are the CNI_ARGS of testTask("task1", ...).
	taskArgsWant = "IgnoreUnknown=1;SHOAL_TASK=task1;SHOAL_SERVICE=web;SHOAL_SLOT=3"
)

func TestAttachTask(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t, "fake-extra")
	m := env.manager(t, 0)
	// The extra plugin declares a capability of its own: it must get neither
	// ips nor mac.
	m.SetNetworks([]*api.Network{
		testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "fake-extra", ConfigJson: `{"capabilities": {"portMappings": true}}`}),
		testNetwork(net2, []string{"198.18.2.0/24"}),
	})
	task := testTask("task1", on(net1, "198.18.0.5/24"), on(net2, "198.18.2.9/24"))

	if err := m.AttachTask(ctx, "sandbox1", netns, task); err != nil {
		t.Fatal(err)
	}
	calls := env.calls(t)
	assertBriefs(t, "AttachTask", calls, []brief{
		{"ADD", bridgePlugin, net1, "sandbox1", "eth0"},
		{"ADD", "fake-extra", net1, "sandbox1", "eth0"},
		{"ADD", bridgePlugin, net2, "sandbox1", "eth1"},
	})
	wantRC := map[string]string{
		net1: `{"ips": ["198.18.0.5/24"], "mac": "02:42:c6:12:00:05"}`,
		net2: `{"ips": ["198.18.2.9/24"], "mac": "02:42:c6:12:02:09"}`,
	}
	for i, c := range calls {
		if c.Netns != netns || c.Args != taskArgsWant || c.CNIVersion != specVersion {
			t.Errorf("call %d: netns %q, args %q, cniVersion %q; want %q, %q, %q", i, c.Netns, c.Args, c.CNIVersion, netns, taskArgsWant, specVersion)
		}
		assertRuntimeConfig(t, c, map[bool]string{true: wantRC[c.Name], false: ""}[c.Type == bridgePlugin])
		if wantPrev := c.Type != bridgePlugin; c.PrevResult != wantPrev {
			t.Errorf("call %d (%s): prevResult given = %v, want %v", i, c.Type, c.PrevResult, wantPrev)
		}
	}
	var bridge struct {
		Bridge string `json:"bridge"`
		MTU    int    `json:"mtu"`
	}
	if err := json.Unmarshal(calls[2].Config, &bridge); err != nil {
		t.Fatal(err)
	}
	if bridge.Bridge != BridgeName(net2) || bridge.MTU != DefaultMTU {
		t.Errorf("shoal-bridge of %s got bridge %q, mtu %d; want %q, %d", net2, bridge.Bridge, bridge.MTU, BridgeName(net2), DefaultMTU)
	}
	assertCached(t, env, net1+"/sandbox1/eth0", net2+"/sandbox1/eth1")

	t.Run("check", func(t *testing.T) {
		if err := m.CheckTask(ctx, "sandbox1", netns, task); err != nil {
			t.Fatal(err)
		}
		calls := env.calls(t)
		assertBriefs(t, "CheckTask", calls, []brief{
			{"CHECK", bridgePlugin, net1, "sandbox1", "eth0"},
			{"CHECK", "fake-extra", net1, "sandbox1", "eth0"},
			{"CHECK", bridgePlugin, net2, "sandbox1", "eth1"},
		})
		for i, c := range calls {
			if !c.PrevResult || c.Args != taskArgsWant || c.Netns != netns {
				t.Errorf("CHECK %d: prevResult given %v, args %q, netns %q; want true, %q, %q", i, c.PrevResult, c.Args, c.Netns, taskArgsWant, netns)
			}
		}
		assertRuntimeConfig(t, calls[0], wantRC[net1])
	})

	t.Run("repeated attach keeps the attachments", func(t *testing.T) {
		if err := m.AttachTask(ctx, "sandbox1", netns, task); err != nil {
			t.Fatal(err)
		}
		assertBriefs(t, "AttachTask again", env.calls(t), nil)
		assertCached(t, env, net1+"/sandbox1/eth0", net2+"/sandbox1/eth1")
	})

	t.Run("attach with another address is refused", func(t *testing.T) {
		moved := testTask("task1", on(net1, "198.18.0.5/24"), on(net2, "198.18.2.10/24"))
		err := m.AttachTask(ctx, "sandbox1", netns, moved)
		if err == nil || !strings.Contains(err.Error(), `already has network `+net2+` as eth1 with address "198.18.2.9/24"`) {
			t.Fatalf("AttachTask = %v, want the existing address named", err)
		}
		assertBriefs(t, "refused AttachTask", env.calls(t), nil)
		assertCached(t, env, net1+"/sandbox1/eth0", net2+"/sandbox1/eth1")
	})
}

func TestAttachTaskUnknownNetwork(t *testing.T) {
	env := newEnv(t)
	m := env.manager(t, 0)
	m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"})})
	task := testTask("task1", on(net1, "198.18.0.5/24"), on(net2, "198.18.2.9/24"))

	err := m.AttachTask(context.Background(), "sandbox1", netns, task)
	if !errors.Is(err, ErrUnknownNetwork) {
		t.Fatalf("AttachTask = %v, want ErrUnknownNetwork", err)
	}
	if want := "network " + net2 + " of task task1 is not known to this node"; err.Error() != want {
		t.Errorf("AttachTask = %q, want %q", err, want)
	}
	assertBriefs(t, "AttachTask", env.calls(t), nil) // nothing added, not even net1
}

func TestAttachTaskRollsBack(t *testing.T) {
	env := newEnv(t, "fake-extra")
	m := env.manager(t, 0)
	m.SetNetworks([]*api.Network{
		testNetwork(net1, []string{"198.18.0.0/24"}),
		testNetwork(net2, []string{"198.18.2.0/24"}, &api.CNIPlugin{Type: "fake-extra", ConfigJson: `{"failAdd": "no room at the inn"}`}),
	})
	task := testTask("task1", on(net1, "198.18.0.5/24"), on(net2, "198.18.2.9/24"))

	err := m.AttachTask(context.Background(), "sandbox1", netns, task)
	if err == nil {
		t.Fatal("AttachTask succeeded, want the second network's error")
	}
	for _, w := range []string{"network " + net2, "no room at the inn", "fake-extra"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("AttachTask error %q does not say %q", err, w)
		}
	}
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInternal {
		t.Errorf("AttachTask error %v does not carry the plugin's *types.Error", err)
	}
	calls := env.calls(t)
	assertBriefs(t, "AttachTask", calls, []brief{
		{"ADD", bridgePlugin, net1, "sandbox1", "eth0"},
		{"ADD", bridgePlugin, net2, "sandbox1", "eth1"},
		{"ADD", "fake-extra", net2, "sandbox1", "eth1"},
		// Rollback: the failed network first, each chain in reverse.
		{"DEL", "fake-extra", net2, "sandbox1", "eth1"},
		{"DEL", bridgePlugin, net2, "sandbox1", "eth1"},
		{"DEL", bridgePlugin, net1, "sandbox1", "eth0"},
	})
	for _, c := range calls[3:] {
		if c.Args != taskArgsWant || c.Netns != netns {
			t.Errorf("rollback %s %s: args %q, netns %q; want %q, %q", c.Type, c.Name, c.Args, c.Netns, taskArgsWant, netns)
		}
	}
	if !calls[5].PrevResult {
		t.Error("rollback DEL of the completed network got no prevResult, want its cached result")
	}
	assertCached(t, env)
}

func TestAttachTaskRefusesBadInput(t *testing.T) {
	tests := []struct {
		name           string
		sandbox, netns string
		task           *api.Task
		want           string
	}{
		{"no sandbox", "", netns, testTask("task1", on(net1, "198.18.0.5/24")), "sandbox ID"},
		{"no netns", "sandbox1", "", testTask("task1", on(net1, "198.18.0.5/24")), "netns"},
		{"address without length", "sandbox1", netns, testTask("task1", on(net1, "198.18.0.5")), `network ` + net1 + `: address`},
		{"no task ID", "sandbox1", netns, testTask("", on(net1, "198.18.0.5/24")), "no ID"},
		{"service name with ';'", "sandbox1", netns, &api.Task{Id: "task1", ServiceName: "a;b", Networks: []*api.NetworkAttachment{on(net1, "198.18.0.5/24")}}, "SHOAL_SERVICE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			m := env.manager(t, 0)
			m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"})})
			err := m.AttachTask(context.Background(), tc.sandbox, tc.netns, tc.task)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AttachTask = %v, want an error saying %q", err, tc.want)
			}
			assertBriefs(t, "AttachTask", env.calls(t), nil)
		})
	}
}

func TestCheckTaskFailures(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t)
	m := env.manager(t, 0)
	m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"}), testNetwork(net2, []string{"198.18.2.0/24"})})
	if err := m.AttachTask(ctx, "sandbox1", netns, testTask("task1", on(net1, "198.18.0.5/24"))); err != nil {
		t.Fatal(err)
	}
	env.calls(t)

	err := m.CheckTask(ctx, "sandbox1", netns, testTask("task1", on(net1, "198.18.0.6/24"), on(net2, "198.18.2.9/24")))
	if !errors.Is(err, ErrNotAttached) || !strings.Contains(err.Error(), "network "+net2+" (eth1 in sandbox sandbox1)") {
		t.Errorf("CheckTask = %v, want ErrNotAttached naming %s", err, net2)
	}
	if err == nil || !strings.Contains(err.Error(), `attached with address "198.18.0.5/24", the task has "198.18.0.6/24"`) {
		t.Errorf("CheckTask = %v, want the address difference on %s", err, net1)
	}
	assertBriefs(t, "CheckTask", env.calls(t), nil)
}

func assertBriefs(t *testing.T, what string, calls []call, want []brief) {
	t.Helper()
	if got := briefs(calls); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Errorf("%s made calls\n%v\nwant\n%v", what, got, want)
	}
}

// assertRuntimeConfig compares c's runtimeConfig with want ("" for none).
func assertRuntimeConfig(t *testing.T, c call, want string) {
	t.Helper()
	switch {
	case want == "" && len(c.RuntimeConfig) != 0:
		t.Errorf("%s %s %s: runtimeConfig %s, want none", c.Command, c.Type, c.Name, c.RuntimeConfig)
	case want != "" && len(c.RuntimeConfig) == 0:
		t.Errorf("%s %s %s: no runtimeConfig, want %s", c.Command, c.Type, c.Name, want)
	case want != "" && canonicalJSON(t, c.RuntimeConfig) != canonicalJSON(t, []byte(want)):
		t.Errorf("%s %s %s: runtimeConfig %s, want %s", c.Command, c.Type, c.Name, c.RuntimeConfig, want)
	}
}

// assertCached compares the cached attachments (network/sandbox/ifname) with want.
func assertCached(t *testing.T, env *testEnv, want ...string) {
	t.Helper()
	got := env.cached(t)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("cached attachments %v, want %v", got, want)
	}
}
