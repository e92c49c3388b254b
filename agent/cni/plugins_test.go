package cni

// This test runs the Manager against shoal's real plugins (plugins/shoal-bridge,
// plugins/shoal-ipam) and the reference tuning plugin, in throwaway network
// namespaces: the rendered conflist must be one they accept, and DetachSandbox
// and GC must take down what ADD set up.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/coreos/go-iptables/iptables"
	"github.com/shoal/shoal/overlay"
	"github.com/vishvananda/netlink"

	"github.com/shoal/shoal/api"
)

func TestRealPlugins(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, a bridge and iptables rules")
	}
	if _, err := os.Stat("../../plugins/shoal-bridge"); errors.Is(err, os.ErrNotExist) {
		t.Skip("plugins/shoal-bridge is not in this tree")
	}
	ctx := context.Background()
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", binDir+"/",
		"./plugins/shoal-bridge", "./plugins/shoal-ipam", "github.com/containernetworking/plugins/plugins/meta/tuning")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build plugins: %v\n%s", err, out)
	}

	netID := api.NewID()
	third := rand.IntN(256)
	network := &api.Network{Id: netID, Meta: &api.Meta{Version: 1}, Spec: &api.NetworkSpec{
		Annotations: &api.Annotations{Name: "cni-test-" + netID[:6]},
		Ipam:        []*api.IPAMConfig{{Subnet: fmt.Sprintf("198.19.%d.0/24", third)}},
		Plugins: []*api.CNIPlugin{{Type: "tuning", ConfigJson: fmt.Sprintf(`{"promisc": true, "dataDir": %q}`,
			filepath.Join(t.TempDir(), "tuning"))}},
	}}
	cfg := Config{BinDirs: []string{binDir}, CacheDir: filepath.Join(t.TempDir(), "cache"), Log: testLogger(t)}
	cleanUpBridge(t, cfg, network)

	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.SetNetworks([]*api.Network{network})
	if err := m.Status(ctx); err != nil {
		t.Fatalf("Status = %v, want the real plugins ready", err)
	}

	sandbox1, sandbox2 := "sb1-"+netID[:10], "sb2-"+netID[:10]
	ns1, ns2 := newTestNS(t), newTestNS(t)
	addr1, addr2 := fmt.Sprintf("198.19.%d.5/24", third), fmt.Sprintf("198.19.%d.6/24", third)
	task1, task2 := testTask("task1", on(netID, addr1)), testTask("task2", on(netID, addr2))
	if err := m.AttachTask(ctx, sandbox1, ns1.Path(), task1); err != nil {
		t.Fatal(err)
	}
	if err := m.AttachTask(ctx, sandbox2, ns2.Path(), task2); err != nil {
		t.Fatal(err)
	}
	assertEth0(t, ns1, addr1)
	assertEth0(t, ns2, addr2)
	if err := m.CheckTask(ctx, sandbox1, ns1.Path(), task1); err != nil {
		t.Errorf("CheckTask = %v, want nil", err)
	}

	// An agent restart: a new Manager that knows no network. The namespace
	// still exists, but the caller says it is gone: DEL must find the host
	// veth by name, and the pair goes with it.
	restarted, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.RemoveNetwork(ctx, network); err == nil || !strings.Contains(err.Error(), "still attached") {
		t.Errorf("RemoveNetwork with sandboxes attached = %v, want a refusal naming one", err)
	}
	if err := restarted.DetachSandbox(ctx, sandbox1, ""); err != nil {
		t.Fatalf("DetachSandbox = %v", err)
	}
	assertNoEth0(t, ns1)
	if err := restarted.DetachSandbox(ctx, sandbox1, ""); err != nil {
		t.Errorf("DetachSandbox again = %v, want nil", err)
	}

	// sandbox2 is gone as far as the caller knows: GC takes it down.
	if err := restarted.GC(ctx, nil); err != nil {
		t.Fatalf("GC = %v", err)
	}
	assertNoEth0(t, ns2)
	if atts, err := restarted.cni.GetCachedAttachments(""); err != nil || len(atts) != 0 {
		t.Errorf("cached attachments after GC: %d, %v; want none", len(atts), err)
	}
}

// assertEth0 checks the interface the plugins made in the namespace: its
// address, the MAC derived from it, the node MTU, tuning's promisc flag, and
// GRO (shoal-bridge turns it on for the tunnelled traffic a task receives).
func assertEth0(t *testing.T, netns ns.NetNS, addr string) {
	t.Helper()
	wantMAC, err := MACOf(addr)
	if err != nil {
		t.Fatal(err)
	}
	err = netns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if a := link.Attrs(); a.HardwareAddr.String() != wantMAC.String() || a.MTU != DefaultMTU || a.Promisc != 1 {
			return fmt.Errorf("eth0 has mac %s, mtu %d, promisc %d; want %s, %d, 1", a.HardwareAddr, a.MTU, a.Promisc, wantMAC, DefaultMTU)
		}
		if on, err := overlay.GROEnabled("eth0"); err != nil || !on {
			return fmt.Errorf("eth0 has GRO %t (%v), want on", on, err)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a.IPNet.String() == addr {
				return nil
			}
		}
		return fmt.Errorf("eth0 has addresses %v, want %s", addrs, addr)
	})
	if err != nil {
		t.Errorf("in %s: %v", netns.Path(), err)
	}
}

func assertNoEth0(t *testing.T, netns ns.NetNS) {
	t.Helper()
	err := netns.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName("eth0"); err == nil {
			return errors.New("eth0 is still there")
		} else if _, ok := err.(netlink.LinkNotFoundError); !ok {
			return err
		}
		return nil
	})
	if err != nil {
		t.Errorf("in %s: %v", netns.Path(), err)
	}
}

// newTestNS is a fresh named network namespace, removed at the end of the test.
func newTestNS(t *testing.T) ns.NetNS {
	t.Helper()
	netns, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() {
		netns.Close()
		if err := testutils.UnmountNS(netns); err != nil {
			t.Errorf("remove network namespace: %v", err)
		}
	})
	return netns
}

// cleanUpBridge removes, at the end of the test, the network's bridge and then
// its iptables rules: through the plugins' GC (which drops the rules of
// bridges that are gone), and by hand for any rule that survives it, which is
// an error.
func cleanUpBridge(t *testing.T, cfg Config, n *api.Network) {
	br := BridgeName(n.GetId())
	t.Cleanup(func() {
		if m, err := New(cfg); err != nil {
			t.Errorf("clean up: %v", err)
		} else if err := m.RemoveNetwork(context.Background(), n); err != nil {
			t.Errorf("clean up: %v", err)
		}
		if _, err := netlink.LinkByName(br); err == nil {
			t.Errorf("bridge %s left after RemoveNetwork", br)
			_ = netlink.LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}})
		}
		ipt, err := iptables.New()
		if err != nil {
			t.Errorf("clean up iptables rules of %s: %v", br, err)
			return
		}
		for _, tc := range [][2]string{{"filter", "SHOAL-FORWARD"}, {"nat", "SHOAL-POSTROUTING"}} {
			rules, err := ipt.List(tc[0], tc[1])
			if err != nil {
				continue // no such chain: nothing of ours in it
			}
			for _, r := range rules {
				if !strings.Contains(r, "shoal-bridge:"+br) {
					continue
				}
				t.Errorf("iptables rule left after RemoveNetwork: %s", r)
				spec := strings.Fields(r)[2:] // drop "-A CHAIN"
				for i := range spec {
					spec[i] = strings.Trim(spec[i], `"`)
				}
				if err := ipt.Delete(tc[0], tc[1], spec...); err != nil {
					t.Errorf("delete rule %q: %v", r, err)
				}
			}
		}
	})
}
