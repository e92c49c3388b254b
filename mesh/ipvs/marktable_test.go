package ipvs

// Kernel tests of the mark table alone: it needs nftables, not IPVS, so they run on kernels
// without IP_VS too.

import (
	"maps"
	"os"
	"os/exec"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/mesh"
)

// nftNetns returns a fresh network namespace for nftables, closed when the test ends.
func nftNetns(t *testing.T) ns.NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and nftables tables")
	}
	n, err := ns.TempNetNS()
	if err != nil {
		t.Fatalf("create a network namespace: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func readMarkTable(t *testing.T, n ns.NetNS, mt markTable) *model {
	t.Helper()
	m := newModel()
	in(t, n, func() error { return mt.read(m) })
	return m
}

func TestMarkTableWritesAndReadsBack(t *testing.T) {
	n := nftNetns(t)
	b, err := New(Config{Table: "shoal-ipvs-test"})
	if err != nil {
		t.Fatal(err)
	}
	mt := b.markTable()
	s := testState(4, 2)
	want := desired(t, b, s, nil)

	all := makePlan(newModel(), want).table
	in(t, n, func() error { return mt.write(all, want) })
	if path, err := exec.LookPath("nft"); err == nil {
		in(t, n, func() error {
			out, err := exec.Command(path, "list", "table", "ip", mt.table.Name).CombinedOutput()
			t.Logf("%s", out)
			return err
		})
	}
	got := readMarkTable(t, n, mt)
	if !got.frame.equal(want.frame) || got.frame.snat != s.SNAT {
		t.Errorf("frame read back:\n %+v\nwant\n %+v", got.frame, want.frame)
	}
	if !maps.Equal(got.vips, want.vips) || !maps.Equal(got.ports, want.ports) {
		t.Errorf("elements read back: %v %v, want %v %v", got.vips, got.ports, want.vips, want.ports)
	}

	// One VIP loses its backends, one port goes: two elements change, the frame stays.
	s.VIPs[2].Backends = nil
	s.Ports = s.Ports[1:]
	next := desired(t, b, s, got)
	maps.Copy(got.services, want.services) // as IPVS would hold them
	p := makePlan(got, next)
	if p.table.rebuild || len(p.table.addVIPs) != 1 || len(p.table.delVIPs) != 1 || len(p.table.delPorts) != 1 {
		t.Fatalf("plan %+v, want one VIP element replaced and one port element deleted", p.table)
	}
	if p.changes != (mesh.Changes{Updated: 1, Removed: 1}) {
		t.Errorf("changes %+v, want 1 updated and 1 removed", p.changes)
	}
	in(t, n, func() error { return mt.write(p.table, next) })
	got = readMarkTable(t, n, mt)
	if !maps.Equal(got.vips, next.vips) || !maps.Equal(got.ports, next.ports) || got.vips[s.VIPs[2].Addr].mark != RejectMark {
		t.Errorf("elements read back: %v %v, want %v %v", got.vips, got.ports, next.vips, next.ports)
	}

	in(t, n, mt.remove)
	if got := readMarkTable(t, n, mt); got.frame.exists {
		t.Error("the mark table is still there after remove")
	}
	in(t, n, mt.remove) // nothing left to remove
}
