package cnitest

import (
	"context"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// TestGCRemovesLeakedAttachment attaches two sandboxes, then runs GC naming
// only one of them as valid, from a runtime whose cache knows neither (as
// after losing its state): only the plugin's own GC can find the other one's
// veth, by its name's shape on the network's bridge. It must delete that veth
// and keep the valid attachment intact.
//
// cnitool's gc passes no valid attachments, so this test drives libcni, the
// library cnitool wraps, which runs the same plugin binaries.
func TestGCRemovesLeakedAttachment(t *testing.T) {
	requireHost(t)
	ctx := context.Background()
	n := newNetwork(t, networkOptions{})
	list, err := libcni.LoadNetworkConf(n.confDir, n.name)
	if err != nil {
		t.Fatal(err)
	}
	runtime := libcni.NewCNIConfigWithCacheDir([]string{cniPath}, t.TempDir(), nil)

	attach := func(sb *sandbox, containerID, addr string) (*libcni.RuntimeConf, string) {
		rt := &libcni.RuntimeConf{
			ContainerID:    containerID,
			NetNS:          sb.path,
			IfName:         "eth0",
			CapabilityArgs: map[string]any{"ips": []string{addr}},
		}
		t.Cleanup(func() {
			if err := runtime.DelNetworkList(ctx, list, rt); err != nil {
				t.Errorf("clean-up DEL of %s: %v", containerID, err)
			}
		})
		r, err := runtime.AddNetworkList(ctx, list, rt)
		if err != nil {
			t.Fatalf("ADD %s: %v", containerID, err)
		}
		res, err := current.NewResultFromResult(r)
		if err != nil {
			t.Fatal(err)
		}
		return rt, res.Interfaces[1].Name
	}
	keepNS, leakNS := newSandbox(t), newSandbox(t)
	keep, keepVeth := attach(keepNS, "gc-keep-"+randomHex(t, 4), n.addr(21))
	_, leakVeth := attach(leakNS, "gc-leak-"+randomHex(t, 4), n.addr(22))

	restarted := libcni.NewCNIConfigWithCacheDir([]string{cniPath}, t.TempDir(), nil)
	valid := []types.GCAttachment{{ContainerID: keep.ContainerID, IfName: keep.IfName}}
	if err := restarted.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		t.Fatalf("GC: %v", err)
	}

	if hostHasLink(leakVeth) {
		t.Errorf("GC kept the leaked attachment's veth %s", leakVeth)
	}
	if leakNS.hasLink(t, "eth0") {
		t.Error("GC kept the leaked attachment's eth0")
	}
	if !hostHasLink(keepVeth) {
		t.Fatalf("GC deleted the valid attachment's veth %s", keepVeth)
	}
	if err := runtime.CheckNetworkList(ctx, list, keep); err != nil {
		t.Errorf("CHECK of the valid attachment after GC: %v", err)
	}
}
