package nft

// Kernel tests of Inspect and Repair after the table was changed by hand, each in a fresh
// network namespace.

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/mesh"
)

func repair(t *testing.T, n ns.NetNS, b *Balancer, s mesh.State) mesh.Changes {
	t.Helper()
	var ch mesh.Changes
	inNetns(t, n, func() error {
		var err error
		ch, err = b.Repair(s)
		return err
	})
	return ch
}

func TestRepairAfterFlushRuleset(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(3, 2)
	syncIn(t, n, b, s)
	if ch := repair(t, n, b, s); ch.Changed() {
		t.Errorf("Repair of a clean table changed %+v", ch)
	}

	flushRuleset(t, n)
	diffs := inspect(t, n, b, s)
	if len(diffs) != 1+3+3 || diffs[0].Kind != "table" || diffs[0].Got != "missing" {
		t.Fatalf("Inspect = %q, want the table and 6 VIPs and ports missing", diffs)
	}
	for _, d := range diffs[1:] {
		if d.Got != "missing" || d.Service == "" {
			t.Errorf("Inspect: %s, want missing with its service", d)
		}
	}
	if ch := repair(t, n, b, s); ch != (mesh.Changes{Added: 6, Rebuilt: true}) {
		t.Errorf("Repair changed %+v, want the table rebuilt with 6 added", ch)
	}
	requireClean(t, n, b, s)
}

func TestRepairAfterHandEdits(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(3, 2)
	syncIn(t, n, b, s)
	edited := vipChain(s.VIPs[1].Addr)
	replaceRuleWithCounter(t, n, b.Table(), edited)
	deletePortBackend(t, n, b.Table())
	before := ruleHandles(t, n, b.Table())

	diffs := inspect(t, n, b, s)
	if len(diffs) != 2 {
		t.Fatalf("Inspect = %q, want 2 differences", diffs)
	}
	vip, port := diffs[0], diffs[1]
	t.Logf("Inspect:\n%s\n%s", vip, port)
	if vip.Kind != "vip" || vip.Key != s.VIPs[1].Addr.String() || !strings.Contains(vip.Got, "[ counter ]") ||
		!strings.Contains(vip.Want, "goto pick-vip-2") {
		t.Errorf("Inspect: %s, want the VIP's rule replaced by a counter", vip)
	}
	// The edited rule lost its comment: the service comes from the State.
	if vip.Service != s.VIPs[1].Service {
		t.Errorf("Inspect: %s, want service %s", vip, s.VIPs[1].Service)
	}
	if port.Kind != "port" || port.Key != "tcp/8080" || port.Want != "backends 198.18.64.0:80 198.18.64.1:80" ||
		port.Got != "backends 198.18.64.0:80" {
		t.Errorf("Inspect: %s, want the port missing its second backend", port)
	}

	if ch := repair(t, n, b, s); ch != (mesh.Changes{Updated: 2}) {
		t.Errorf("Repair changed %+v, want 2 updated", ch)
	}
	requireClean(t, n, b, s)
	after := ruleHandles(t, n, b.Table())
	for chain, handles := range before {
		if replaced := !slices.Equal(handles, after[chain]); replaced != (chain == edited) {
			t.Errorf("chain %s: rule handles %v then %v; want only %s's replaced", chain, handles, after[chain], edited)
		}
	}
}

// An element missing from the hairpin set, or one no VIP needs, is a difference of the set, and
// Repair puts it right piecewise.
func TestRepairOfTheHairpinSet(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(3, 2)
	syncIn(t, n, b, s)
	missing, stray := s.VIPs[2].Backends[1], netip.MustParseAddr("198.18.99.9")
	editHairpin(t, n, b.Table(), false, missing.As4())
	editHairpin(t, n, b.Table(), true, stray.As4())

	diffs := inspect(t, n, b, s)
	want := []mesh.Difference{
		{Kind: "table", Key: "set hairpin element " + missing.String(), Want: "present", Got: "absent"},
		{Kind: "table", Key: "set hairpin element " + stray.String(), Want: "absent", Got: "present"},
	}
	if !reflect.DeepEqual(diffs, want) {
		t.Fatalf("Inspect = %q, want %q", diffs, want)
	}
	if ch := repair(t, n, b, s); ch != (mesh.Changes{Updated: 1}) {
		t.Errorf("Repair changed %+v, want the set updated", ch)
	}
	requireClean(t, n, b, s)
}

// A hand edit of the hairpin set beside one of a VIP's backends: Inspect names both, and Repair
// counts both (the VIP and the set).
func TestRepairOfTheHairpinSetBesideAVIP(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(3, 2)
	syncIn(t, n, b, s)
	v := s.VIPs[1]
	// The VIP loses its slot-0 backend; the element of its other backend goes too, by hand.
	editElements(t, n, b.Table(), setVIPBackends, false, slotBytes(addrBytes(v.Addr), 0))
	other := b.applied.vips[v.Addr].backends[1]
	editHairpin(t, n, b.Table(), false, addr4Of(other))

	diffs := inspect(t, n, b, s)
	if len(diffs) != 2 || diffs[0].Kind != "table" || diffs[0].Key != "set hairpin element "+formatAddr(other) || diffs[1].Kind != "vip" {
		t.Fatalf("Inspect = %q, want the hairpin element of %s and VIP %s", diffs, formatAddr(other), v.Addr)
	}
	if ch := repair(t, n, b, s); ch != (mesh.Changes{Updated: 2}) {
		t.Errorf("Repair changed %+v, want the VIP and the set updated", ch)
	}
	requireClean(t, n, b, s)
}

// editHairpin adds or deletes the hairpin element of addr, behind the Balancer's back.
func editHairpin(t *testing.T, n ns.NetNS, table string, add bool, addr addr4) {
	t.Helper()
	editElements(t, n, table, setHairpin, add, hairpinKey(addr))
}

func TestRepairRemovesWhatTheStateLacks(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(3, 2)
	syncIn(t, n, b, s)
	// Another Balancer (an agent restarted with an older view) is told of fewer VIPs.
	other := newTestBalancer(t, Config{Table: b.Table()})
	fewer := s
	fewer.VIPs = s.VIPs[:1]
	diffs := inspect(t, n, other, fewer)
	if len(diffs) != 2 || diffs[0].Want != "absent" || diffs[1].Want != "absent" {
		t.Fatalf("Inspect = %q, want 2 VIPs that should be absent", diffs)
	}
	if ch := repair(t, n, other, fewer); ch != (mesh.Changes{Removed: 2}) {
		t.Errorf("Repair changed %+v, want 2 removed", ch)
	}
	requireClean(t, n, other, fewer)
}

func TestRepairRebuildsATableWithForeignObjects(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(2, 1)
	syncIn(t, n, b, s)
	if _, ok := nft(t, n, "add", "chain", "ip", b.Table(), "mine"); !ok {
		t.Skip("needs the nft binary to add a chain by hand")
	}
	diffs := inspect(t, n, b, s)
	if want := []mesh.Difference{{Kind: "table", Key: "chain mine", Want: "absent (not made by shoal)", Got: "present"}}; !reflect.DeepEqual(diffs, want) {
		t.Fatalf("Inspect = %q, want %q", diffs, want)
	}
	if ch := repair(t, n, b, s); !ch.Rebuilt {
		t.Errorf("Repair changed %+v, want a rebuild", ch)
	}
	requireClean(t, n, b, s)
}

// A VIP whose element of the vips map was deleted by hand reads back with no backends (nothing
// reaches them), so a check that compares Read with the desired state sees it; Inspect names it.
func TestReadShowsAnUnwiredVIPWithoutBackends(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(2, 2)
	syncIn(t, n, b, s)
	gone := s.VIPs[0].Addr
	if out, ok := nft(t, n, "delete", "element", "ip", b.Table(), setVIPs, "{ "+gone.String()+" }"); !ok {
		t.Skipf("no nft command to edit the table by hand: %s", out)
	}
	got := read(t, n, b)
	for _, v := range got.VIPs {
		switch {
		case v.Addr == gone && len(v.Backends) != 0:
			t.Errorf("Read: VIP %s without its map element has backends %v, want none", v.Addr, v.Backends)
		case v.Addr != gone && len(v.Backends) != 2:
			t.Errorf("Read: VIP %s has backends %v, want its 2", v.Addr, v.Backends)
		}
	}
	if diffs := inspect(t, n, b, s); len(diffs) != 1 || diffs[0].Key != gone.String() {
		t.Errorf("Inspect = %v, want one difference, of %s", diffs, gone)
	}
}
