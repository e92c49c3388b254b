package cni

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/shoal/shoal/api"
)

func TestStatus(t *testing.T) {
	ctx := context.Background()
	env := newEnv(t, "fake-extra")
	m := env.manager(t, 0)

	if err := m.Status(ctx); err != nil {
		t.Errorf("Status with no network = %v, want nil", err)
	}

	m.SetNetworks([]*api.Network{
		testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "fake-extra"}),
		testNetwork(net2, []string{"198.18.2.0/24"}),
	})
	if err := m.Status(ctx); err != nil {
		t.Fatalf("Status = %v, want nil", err)
	}
	assertBriefs(t, "Status", env.calls(t), []brief{
		{"STATUS", bridgePlugin, net1, "", ""},
		{"STATUS", "fake-extra", net1, "", ""},
		{"STATUS", bridgePlugin, net2, "", ""},
	})

	// A later version of net1 whose extra plugin cannot serve.
	failing := testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "fake-extra", ConfigJson: `{"statusError": "iptables binary not found"}`})
	failing.Meta.Version = 2
	m.SetNetworks([]*api.Network{failing})
	err := m.Status(ctx)
	if err == nil {
		t.Fatal("Status = nil, want the failing plugin's error")
	}
	for _, w := range []string{"network " + net1 + " (net-n1q2)", "plugin 1 of the chain (fake-extra)", "iptables binary not found"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Status error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), net2) {
		t.Errorf("Status error %q names %s, which is ready", err, net2)
	}
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrPluginNotAvailable {
		t.Errorf("Status error %v does not carry the plugin's code %d", err, types.ErrPluginNotAvailable)
	}

	// An older version arriving late changes nothing.
	m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "fake-extra"})})
	if err := m.Status(ctx); err == nil {
		t.Error("Status = nil after an older version of the network arrived, want the newer one's error still")
	}
}

func TestStatusMissingPlugin(t *testing.T) {
	env := newEnv(t)
	m := env.manager(t, 0)
	m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "not-installed"})})
	err := m.Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "plugin 1 of the chain (not-installed)") {
		t.Errorf("Status = %v, want the missing plugin named", err)
	}
}

// The node's readiness is its own plugins': a network's missing extra plugin does not make the
// node unready, and only shoal-bridge is asked.
func TestNodeStatus(t *testing.T) {
	env := newEnv(t)
	m := env.manager(t, 0)
	m.SetNetworks([]*api.Network{testNetwork(net1, []string{"198.18.0.0/24"}, &api.CNIPlugin{Type: "not-installed"})})
	if err := m.NodeStatus(context.Background()); err != nil {
		t.Fatalf("NodeStatus = %v, want nil: the node's own plugins are there", err)
	}
	for _, c := range env.calls(t) {
		if c.Type != bridgePlugin || c.Command != "STATUS" {
			t.Errorf("NodeStatus called %s %s, want only %s's STATUS", c.Command, c.Type, bridgePlugin)
		}
	}

	bare, err := New(Config{BinDirs: []string{t.TempDir()}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := bare.NodeStatus(context.Background()); err == nil || !strings.Contains(err.Error(), bridgePlugin) {
		t.Errorf("NodeStatus without shoal's plugins = %v, want an error naming %s", err, bridgePlugin)
	}
}
