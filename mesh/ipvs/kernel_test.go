package ipvs

// Kernel tests, each in a fresh network namespace; skipped where the kernel has no IPVS.

import (
	"os"
	"reflect"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"
	"github.com/shoal/shoal/mesh"
)

// ipvsNetns returns a fresh network namespace, closed when the test ends; the test is skipped
// when the kernel has no IPVS.
func ipvsNetns(t *testing.T) ns.NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, IPVS services and nftables tables")
	}
	n, err := ns.TempNetNS()
	if err != nil {
		t.Fatalf("create a network namespace: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	var ok bool
	var why string
	in(t, n, func() error {
		ok, why = Available()
		return nil
	})
	if !ok {
		t.Skip(why)
	}
	return n
}

// in runs fn on a thread locked to n; fn returns an error to fail the test.
func in(t *testing.T, n ns.NetNS, fn func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return fn() }); err != nil {
		t.Fatal(err)
	}
}

func requireClean(t *testing.T, n ns.NetNS, b *Balancer, s mesh.State) {
	t.Helper()
	in(t, n, func() error {
		d, err := b.Inspect(s)
		if err != nil {
			return err
		}
		if len(d) != 0 {
			t.Fatalf("Inspect found %d differences, first: %s", len(d), d[0])
		}
		got, err := b.Read()
		if err != nil {
			return err
		}
		if want := canonical(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("Read:\n got  %+v\n want %+v", got, want)
		}
		return nil
	})
}

func TestKernelSyncRepairRemove(t *testing.T) {
	n := ipvsNetns(t)
	b, err := New(Config{Table: "shoal-ipvs-test"})
	if err != nil {
		t.Fatal(err)
	}
	s := testState(3, 2)
	sync := func(want mesh.Changes) {
		t.Helper()
		in(t, n, func() error {
			ch, err := b.Sync(s)
			if err == nil && ch != want {
				t.Errorf("Sync changed %+v, want %+v", ch, want)
			}
			return err
		})
	}
	sync(mesh.Changes{Added: 6, Rebuilt: true})
	requireClean(t, n, b, s)
	sync(mesh.Changes{})

	s.VIPs[1].Backends[0] = ip4(1<<14 + 99)
	sync(mesh.Changes{Updated: 1})
	requireClean(t, n, b, s)

	// A service deleted by hand, then the whole ruleset flushed: Repair puts both back.
	in(t, n, func() error {
		h, err := openIPVS()
		if err != nil {
			return err
		}
		defer h.Close()
		return h.DelService(fwmarkService(kindVIP|1, ""))
	})
	in(t, n, func() error {
		ch, err := b.Repair(s)
		if err == nil && ch != (mesh.Changes{Updated: 1}) {
			t.Errorf("Repair changed %+v, want 1 updated", ch)
		}
		return err
	})
	requireClean(t, n, b, s)
	in(t, n, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		c.FlushRuleset()
		if err := c.Flush(); err != nil {
			return err
		}
		ch, err := b.Repair(s)
		if err == nil && !ch.Rebuilt {
			t.Errorf("Repair after a flushed ruleset changed %+v, want a rebuild", ch)
		}
		return err
	})
	requireClean(t, n, b, s)

	in(t, n, b.Remove)
	in(t, n, func() error {
		got, err := b.Read()
		if err == nil && !reflect.DeepEqual(got, mesh.State{}) {
			t.Errorf("Read after Remove = %+v, want nothing", got)
		}
		return err
	})
}
