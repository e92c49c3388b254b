package nft

// Kernel tests of Sync, Read and Remove, each in a fresh network namespace.

import (
	"errors"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/shoal/shoal/mesh"
)

// syncIn runs b.Sync(s) in n and fails the test on error.
func syncIn(t *testing.T, n ns.NetNS, b *Balancer, s mesh.State) mesh.Changes {
	t.Helper()
	var ch mesh.Changes
	inNetns(t, n, func() error {
		var err error
		ch, err = b.Sync(s)
		return err
	})
	return ch
}

func read(t *testing.T, n ns.NetNS, b *Balancer) mesh.State {
	t.Helper()
	var s mesh.State
	inNetns(t, n, func() error {
		var err error
		s, err = b.Read()
		return err
	})
	return s
}

func inspect(t *testing.T, n ns.NetNS, b *Balancer, s mesh.State) []mesh.Difference {
	t.Helper()
	var d []mesh.Difference
	inNetns(t, n, func() error {
		var err error
		d, err = b.Inspect(s)
		return err
	})
	return d
}

// requireClean fails the test unless the kernel holds exactly s.
func requireClean(t *testing.T, n ns.NetNS, b *Balancer, s mesh.State) {
	t.Helper()
	if d := inspect(t, n, b, s); len(d) != 0 {
		t.Fatalf("Inspect found %d differences, first: %s", len(d), d[0])
	}
	if got, want := read(t, n, b), canonical(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("Read:\n got  %+v\n want %+v", got, want)
	}
}

func TestSyncProgramsFromEmptyAndReadRoundTrips(t *testing.T) {
	for _, sel := range []mesh.Selection{mesh.Random, mesh.Hash} {
		t.Run(sel.String(), func(t *testing.T) {
			n := nodeNetns(t)
			b := newTestBalancer(t, Config{Selection: sel})
			s := testState(5, 3)
			s.VIPs = append(s.VIPs, testVIP(5, 0)) // a VIP without backends
			if ch := syncIn(t, n, b, s); ch != (mesh.Changes{Added: 6 + 3, Rebuilt: true}) {
				t.Errorf("first Sync changed %+v, want 9 added and the table rebuilt", ch)
			}
			requireClean(t, n, b, s)
			if ch := syncIn(t, n, b, s); ch.Changed() {
				t.Errorf("second Sync changed %+v, want nothing", ch)
			}
			// Order does not matter: a shuffled State is the same State.
			slices.Reverse(s.VIPs)
			slices.Reverse(s.VIPs[0].Backends)
			if ch := syncIn(t, n, b, s); ch.Changed() {
				t.Errorf("Sync of the reordered State changed %+v, want nothing", ch)
			}
		})
	}
}

func TestSyncOfOneBackendChangeTouchesOneService(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(20, 3)
	syncIn(t, n, b, s)
	before := ruleHandles(t, n, b.Table())

	// A backend replaced: its element in the backends map and in the hairpin set change, no rule.
	s.VIPs[7].Backends = []netip.Addr{backendIP(7, 0), backendIP(7, 9), backendIP(7, 2)}
	bt := plan(b.applied, b.desired(s, b.applied))
	if messages, elements := bt.messages(); messages != 4 || elements != 4 {
		t.Errorf("the batch has %d messages and %d elements, want 4 of each (delete and add one element of two sets)", messages, elements)
	}
	if ch := syncIn(t, n, b, s); ch != (mesh.Changes{Updated: 1}) {
		t.Errorf("Sync changed %+v, want 1 updated", ch)
	}
	requireClean(t, n, b, s)
	if after := ruleHandles(t, n, b.Table()); !reflect.DeepEqual(after, before) {
		t.Errorf("replacing a backend changed rules:\n before %v\n after  %v", before, after)
	}

	// A backend gone: the VIP's chain now goes to the chain for 2 backends, made for it.
	s.VIPs[7].Backends = s.VIPs[7].Backends[:2]
	if ch := syncIn(t, n, b, s); ch != (mesh.Changes{Updated: 1}) {
		t.Errorf("Sync changed %+v, want 1 updated", ch)
	}
	requireClean(t, n, b, s)
	after := ruleHandles(t, n, b.Table())
	if _, ok := after[pickChain(pickVIPPrefix, 2)]; !ok || len(after) != len(before)+1 {
		t.Errorf("chains before %v, after %v; want pick-vip-2 added", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
	for chain, handles := range before {
		replaced := !slices.Equal(handles, after[chain])
		if want := chain == vipChain(s.VIPs[7].Addr); replaced != want {
			t.Errorf("chain %s: rule handles %v then %v; want replaced=%t", chain, handles, after[chain], want)
		}
	}

	// Back to 3 backends: the chain for 2 goes.
	s.VIPs[7].Backends = append(s.VIPs[7].Backends, backendIP(7, 5))
	syncIn(t, n, b, s)
	requireClean(t, n, b, s)
	if again := ruleHandles(t, n, b.Table()); len(again) != len(before) {
		t.Errorf("chains %v, want those of before %v", slices.Sorted(maps.Keys(again)), slices.Sorted(maps.Keys(before)))
	}
}

func TestSyncAddsAndRemovesVIPsAndPorts(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(4, 2)
	syncIn(t, n, b, s)

	smaller := s
	smaller.VIPs = slices.Clone(s.VIPs[:3])
	smaller.Ports = slices.Clone(s.Ports[1:])
	if ch := syncIn(t, n, b, smaller); ch != (mesh.Changes{Removed: 2}) {
		t.Errorf("Sync changed %+v, want 2 removed", ch)
	}
	requireClean(t, n, b, smaller)
	handles := ruleHandles(t, n, b.Table())
	for _, gone := range []string{vipChain(s.VIPs[3].Addr), portChain(keyOf(s.Ports[0]))} {
		if _, ok := handles[gone]; ok {
			t.Errorf("chain %s is still there", gone)
		}
	}

	if ch := syncIn(t, n, b, s); ch != (mesh.Changes{Added: 2}) {
		t.Errorf("Sync changed %+v, want 2 added", ch)
	}
	requireClean(t, n, b, s)

	// The SNAT address changes alone: the postrouting rule is replaced.
	s.SNAT = netip.MustParseAddr("198.19.255.253")
	if ch := syncIn(t, n, b, s); ch != (mesh.Changes{Updated: 1}) {
		t.Errorf("Sync of a new SNAT changed %+v, want 1 updated", ch)
	}
	requireClean(t, n, b, s)

	// Without an SNAT address the postrouting chain loses its rule and the output chain the rule
	// that marks the node's own connections to VIPs for it.
	if ch := syncIn(t, n, b, mesh.State{}); ch != (mesh.Changes{Removed: 4 + 3, Updated: 2}) {
		t.Errorf("Sync of an empty State changed %+v, want 7 removed and the postrouting and output chains updated", ch)
	}
	requireClean(t, n, b, mesh.State{})
}

func TestSyncRefusesInvalidStateAndChangesNothing(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(2, 2)
	syncIn(t, n, b, s)
	before := ruleHandles(t, n, b.Table())

	bad := testState(2, 2)
	bad.VIPs[1].Backends[0] = netip.MustParseAddr("fd00::1")
	inNetns(t, n, func() error {
		_, err := b.Sync(bad)
		var fe *mesh.FieldError
		if !errors.As(err, &fe) || fe.Field != "VIPs[1].Backends[0]" {
			t.Errorf("Sync = %v, want a FieldError for VIPs[1].Backends[0]", err)
		}
		return nil
	})
	requireClean(t, n, b, s)
	if after := ruleHandles(t, n, b.Table()); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused Sync changed rules:\n before %v\n after  %v", before, after)
	}
}

// A Sync whose piecewise batch no longer fits the kernel (a chain deleted by hand) rebuilds the
// table.
func TestSyncRebuildsWhenTheKernelChangedUnderIt(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(3, 2)
	syncIn(t, n, b, s)
	flushRuleset(t, n)

	s.VIPs[1].Backends = s.VIPs[1].Backends[:1]
	if ch := syncIn(t, n, b, s); !ch.Rebuilt || ch.Added != 3+3 {
		t.Errorf("Sync changed %+v, want the table rebuilt with 6 added", ch)
	}
	requireClean(t, n, b, s)
}

func TestRemoveDeletesTheTable(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	syncIn(t, n, b, testState(2, 2))
	for range 2 { // the second finds nothing to delete
		inNetns(t, n, b.Remove)
		if tableExists(t, n, b.Table()) {
			t.Fatal("the table is still there")
		}
	}
	if got := read(t, n, b); !reflect.DeepEqual(got, mesh.State{}) {
		t.Errorf("Read after Remove = %+v, want an empty State", got)
	}
	// The next Sync programs everything again.
	if ch := syncIn(t, n, b, testState(2, 2)); !ch.Rebuilt {
		t.Errorf("Sync after Remove changed %+v, want a rebuild", ch)
	}
}
