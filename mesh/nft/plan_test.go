package nft

// Tests of desired and plan on models alone: no kernel.

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/shoal/shoal/mesh"
)

func TestAssignSlots(t *testing.T) {
	a, b, c, d := "a", "b", "c", "d"
	cases := []struct {
		name     string
		hint     map[uint32]string
		backends []string
		want     map[uint32]string
	}{
		{"no hint: sorted", nil, []string{c, a, b}, map[uint32]string{0: a, 1: b, 2: c}},
		{"kept", map[uint32]string{0: c, 1: a, 2: b}, []string{a, b, c}, map[uint32]string{0: c, 1: a, 2: b}},
		{"replaced takes the free slot", map[uint32]string{0: c, 1: a, 2: b}, []string{a, b, d},
			map[uint32]string{0: d, 1: a, 2: b}},
		{"shrunk: the last slot's backend moves into the hole", map[uint32]string{0: a, 1: b, 2: c}, []string{a, c},
			map[uint32]string{0: a, 1: c}},
		{"grown: new backends at the end", map[uint32]string{0: b, 1: a}, []string{a, b, d, c},
			map[uint32]string{0: b, 1: a, 2: c, 3: d}},
		{"a hint with gaps and twice the same", map[uint32]string{1: a, 5: b, 2: a}, []string{a, b},
			map[uint32]string{1: a, 0: b}},
		{"none", map[uint32]string{0: a}, nil, map[uint32]string{}},
	}
	for _, c := range cases {
		if got := assignSlots(c.hint, c.backends); !maps.Equal(got, c.want) {
			t.Errorf("%s: assignSlots(%v, %v) = %v, want %v", c.name, c.hint, c.backends, got, c.want)
		}
	}
}

func modelBalancer(t *testing.T) *Balancer {
	t.Helper()
	b, err := New(Config{Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPlanFromNothingRebuilds(t *testing.T) {
	b := modelBalancer(t)
	want := b.desired(testState(3, 2), nil)
	bt := plan(newTableModel(), want)
	if !bt.rebuild || bt.changes != (mesh.Changes{Added: 6, Rebuilt: true}) {
		t.Fatalf("plan from nothing: rebuild %t, changes %+v", bt.rebuild, bt.changes)
	}
	// Six chains of VIPs and ports, pick chains for 2 backends of VIPs and 2 and 1 of ports.
	wantChains := []string{"pick-port-1", "pick-port-2", "pick-vip-2", "port-tcp-8080", "port-tcp-9000",
		"port-udp-53", "vip-198.18.0.1", "vip-198.18.0.2", "vip-198.18.0.3"}
	if got := slices.Sorted(slices.Values(bt.addChains)); !slices.Equal(got, wantChains) {
		t.Errorf("chains added %v, want %v", got, wantChains)
	}
	if n := len(bt.addElems[setVIPBackends]); n != 6 {
		t.Errorf("%d VIP backends added, want 6", n)
	}
}

func TestPlanOfTheSameIsEmpty(t *testing.T) {
	b := modelBalancer(t)
	s := testState(3, 2)
	applied := b.desired(s, nil)
	if bt := plan(applied, b.desired(s, applied)); !bt.empty() || bt.changes.Changed() {
		t.Errorf("plan of the same State: %+v", bt)
	}
	// A fresh model of the same State (no reused objects) compares equal too.
	if bt := plan(applied, b.desired(s, nil)); !bt.empty() {
		t.Errorf("plan of a rebuilt model of the same State: %+v", bt)
	}
}

// elemKeys returns the keys of a batch's elements, by set, as strings.
func elemKeys(groups map[string][]nftables.SetElement) map[string][]string {
	out := map[string][]string{}
	for set, elems := range groups {
		for _, e := range elems {
			out[set] = append(out[set], string(e.Key))
		}
	}
	return out
}

func TestPlanOfOneBackendChangeTouchesOnlyItsElements(t *testing.T) {
	b := modelBalancer(t)
	s := testState(50, 3)
	applied := b.desired(s, nil)
	s.VIPs[20].Backends = []netip.Addr{backendIP(20, 0), backendIP(20, 7), backendIP(20, 2)}
	bt := plan(applied, b.desired(s, applied))
	slot1 := string(slotBytes(addrBytes(s.VIPs[20].Addr), 1))
	hairpin := func(a netip.Addr) string { return string(hairpinKey(a.As4())) }
	wantDel := map[string][]string{setVIPBackends: {slot1}, setHairpin: {hairpin(backendIP(20, 1))}}
	wantAdd := map[string][]string{setVIPBackends: {slot1}, setHairpin: {hairpin(backendIP(20, 7))}}
	if got := elemKeys(bt.delElems); !reflect.DeepEqual(got, wantDel) {
		t.Errorf("deleted elements %q, want %q", got, wantDel)
	}
	if got := elemKeys(bt.addElems); !reflect.DeepEqual(got, wantAdd) {
		t.Errorf("added elements %q, want %q", got, wantAdd)
	}
	if len(bt.flush)+len(bt.delChains)+len(bt.addChains)+len(bt.rules) != 0 || bt.changes != (mesh.Changes{Updated: 1}) {
		t.Errorf("batch %+v, want elements only and 1 updated", bt)
	}
}

func TestPlanOfABackendCountChangeReplacesOneRule(t *testing.T) {
	b := modelBalancer(t)
	s := testState(50, 3)
	applied := b.desired(s, nil)
	s.VIPs[20].Backends = s.VIPs[20].Backends[:2]
	bt := plan(applied, b.desired(s, applied))
	chain := vipChain(s.VIPs[20].Addr)
	if !slices.Equal(bt.flush, []string{chain}) || len(bt.rules) != 2 {
		t.Fatalf("flush %v, rules %v; want %s flushed, its rule and pick-vip-2's added", bt.flush, bt.rules, chain)
	}
	if bt.rules[0].chain != chain || !strings.Contains(bt.rules[0].rule.text, "goto pick-vip-2") {
		t.Errorf("rule %s: %s, want a goto pick-vip-2 in %s", bt.rules[0].chain, bt.rules[0].rule, chain)
	}
	if !slices.Equal(bt.addChains, []string{"pick-vip-2"}) || bt.rules[1].chain != "pick-vip-2" {
		t.Errorf("chains added %v, rule %s; want pick-vip-2 and its rule", bt.addChains, bt.rules[1].chain)
	}
}

func TestPlanRemovesAVIPAndItsPickChain(t *testing.T) {
	b := modelBalancer(t)
	s := testState(3, 2)
	s.VIPs[2].Backends = append(s.VIPs[2].Backends, backendIP(2, 5))
	applied := b.desired(s, nil)
	s.VIPs = s.VIPs[:2]
	bt := plan(applied, b.desired(s, applied))
	if bt.changes != (mesh.Changes{Removed: 1}) {
		t.Errorf("changes %+v, want 1 removed", bt.changes)
	}
	gone := vipChain(ip4(3))
	if want := []string{gone, "pick-vip-3"}; !slices.Equal(bt.delChains, want) || !slices.Equal(bt.flush, want) {
		t.Errorf("flushed %v, deleted %v; want %v", bt.flush, bt.delChains, want)
	}
	key := string(addrBytes(ip4(3)))
	for _, set := range []string{setVIPs, setVIPAddrs} {
		if got := elemKeys(bt.delElems)[set]; !slices.Equal(got, []string{key}) {
			t.Errorf("deleted from %s: %q, want the VIP", set, got)
		}
	}
	if n := len(bt.delElems[setVIPBackends]); n != 3 {
		t.Errorf("%d backends deleted, want 3", n)
	}
}

func TestRebuildReasons(t *testing.T) {
	b := modelBalancer(t)
	want := b.desired(testState(2, 1), nil)
	cases := map[string]func(m *tableModel){
		"the table is missing":    func(m *tableModel) { m.exists = false },
		"the table holds chain x": func(m *tableModel) { m.foreign = []string{"chain x"} },
		"its sets differ":         func(m *tableModel) { delete(m.sets, setPorts) },
		"chain input is missing or hooked differently": func(m *tableModel) {
			in := m.base[chainInput]
			in.hook = "type filter hook 1 priority 0 policy drop"
			m.base[chainInput] = in
		},
	}
	for reason, edit := range cases {
		got := b.desired(testState(2, 1), nil)
		edit(got)
		if r := rebuildReason(got, want); r != reason {
			t.Errorf("rebuildReason = %q, want %q", r, reason)
		}
	}
	if r := rebuildReason(b.desired(testState(2, 1), nil), want); r != "" {
		t.Errorf("rebuildReason of the same = %q", r)
	}
}
