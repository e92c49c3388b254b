package ipvs

// Tests of desired, plan and differences on models alone: no kernel.

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shoal/shoal/mesh"
)

func modelBalancer(t *testing.T, sel mesh.Selection) *Balancer {
	t.Helper()
	b, err := New(Config{Table: "t", Selection: sel})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func desired(t *testing.T, b *Balancer, s mesh.State, prev *model) *model {
	t.Helper()
	m, err := b.desired(s, prev)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDesiredStateRoundTrips(t *testing.T) {
	for _, sel := range []mesh.Selection{mesh.Random, mesh.Hash} {
		b := modelBalancer(t, sel)
		s := testState(3, 2)
		m := desired(t, b, s, nil)
		if got, want := m.state(), canonical(s); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: state:\n got  %+v\n want %+v", sel, got, want)
		}
		sched := map[mesh.Selection]string{mesh.Random: "rr", mesh.Hash: "sh"}[sel]
		if svc := m.services[kindVIP|1]; svc.sched != sched || len(svc.dests) != 2 || svc.dests[0].Port != 0 {
			t.Errorf("%s: VIP service %+v, want scheduler %s and 2 destinations on port 0", sel, svc, sched)
		}
		if len(m.services) != 3+2 {
			t.Errorf("%s: %d services, want 5 (the port without backends has none)", sel, len(m.services))
		}
	}
}

func TestPlanOfTheSameIsEmpty(t *testing.T) {
	b := modelBalancer(t, mesh.Random)
	got := desired(t, b, testState(3, 2), nil)
	if p := makePlan(got, desired(t, b, testState(3, 2), got)); !p.empty() || p.changes.Changed() {
		t.Errorf("plan of the same State: %+v", p)
	}
}

func TestPlanOfOneBackendChangeTouchesOneService(t *testing.T) {
	b := modelBalancer(t, mesh.Random)
	s := testState(10, 3)
	got := desired(t, b, s, nil)
	old := s.VIPs[4].Backends[1]
	s.VIPs[4].Backends[1] = ip4(1<<14 + 49)
	p := makePlan(got, desired(t, b, s, got))
	mark := got.vips[s.VIPs[4].Addr].mark
	if !p.table.empty() || len(p.services.create)+len(p.services.resched)+len(p.services.remove) != 0 {
		t.Errorf("plan %+v, want destination changes only", p)
	}
	if add := p.services.addDests; len(add) != 1 || !reflect.DeepEqual(add[mark], []mesh.Backend{{Addr: ip4(1<<14 + 49)}}) {
		t.Errorf("destinations added %v, want the new backend in service %s", add, describeMark(mark))
	}
	if del := p.services.delDests; len(del) != 1 || !reflect.DeepEqual(del[mark], []mesh.Backend{{Addr: old}}) {
		t.Errorf("destinations deleted %v, want the old backend of service %s", del, describeMark(mark))
	}
	if p.changes != (mesh.Changes{Updated: 1}) {
		t.Errorf("changes %+v, want 1 updated", p.changes)
	}
}

func TestPlanAddsAndRemoves(t *testing.T) {
	b := modelBalancer(t, mesh.Random)
	s := testState(3, 2)
	got := desired(t, b, s, nil)
	s.VIPs = s.VIPs[1:]
	s.VIPs = append(s.VIPs, testState(5, 1).VIPs[4])
	p := makePlan(got, desired(t, b, s, got))
	if p.changes != (mesh.Changes{Added: 1, Removed: 1}) {
		t.Errorf("changes %+v, want 1 added and 1 removed", p.changes)
	}
	if !slices.Equal(p.table.delVIPs, []netip.Addr{ip4(1)}) || !slices.Equal(p.table.addVIPs, []netip.Addr{ip4(5)}) {
		t.Errorf("mark elements deleted %v, added %v", p.table.delVIPs, p.table.addVIPs)
	}
	// The new VIP does not take the mark 198.18.0.1 leaves: that service goes after the mark
	// table changed.
	if _, ok := p.services.create[kindVIP|4]; !ok || len(p.services.create) != 1 || !slices.Equal(p.services.remove, []uint32{kindVIP | 1}) {
		t.Errorf("services created %v, removed %v; want mark 4 created and 1 removed", p.services.create, p.services.remove)
	}
}

func TestPlanRebuildsTheMarkTable(t *testing.T) {
	b := modelBalancer(t, mesh.Random)
	s := testState(2, 1)
	want := desired(t, b, s, nil)

	missing := newModel()
	for m, svc := range want.services {
		missing.services[m] = svc
	}
	p := makePlan(missing, want)
	if !p.table.rebuild || len(p.table.addVIPs) != 2 || len(p.table.addPorts) != 3 || p.changes != (mesh.Changes{Added: 5, Rebuilt: true}) {
		t.Errorf("plan from a missing table: %+v, changes %+v", p.table, p.changes)
	}

	// Another SNAT address changes the postrouting chain: the table is rebuilt.
	s.SNAT = ip4(99)
	p = makePlan(want, desired(t, b, s, want))
	if !p.table.rebuild || p.changes != (mesh.Changes{Updated: 1}) || !p.services.empty() {
		t.Errorf("plan of a new SNAT: %+v, changes %+v; want the table rebuilt in place", p.table, p.changes)
	}
}

func TestDifferences(t *testing.T) {
	b := modelBalancer(t, mesh.Random)
	s := testState(3, 2)
	want := desired(t, b, s, nil)
	got := desired(t, b, s, nil)
	if d := differences("t", got, want); len(d) != 0 {
		t.Fatalf("differences of the same: %q", d)
	}
	delete(got.services, kindVIP|2)          // a service deleted by hand
	got.services[kindVIP|9] = service{}      // one nothing leads to
	delete(got.ports, portKey{mesh.UDP, 53}) // a mark element gone
	diffs := differences("t", got, want)
	if len(diffs) != 3 {
		t.Fatalf("differences %q, want 3", diffs)
	}
	if d := diffs[0]; d.Kind != "vip" || d.Key != "198.18.0.2" || d.Service != "svc1" || !strings.HasSuffix(d.Got, "no IPVS service") {
		t.Errorf("first difference %s, want VIP 198.18.0.2 without its IPVS service", d)
	}
	if d := diffs[1]; d.Kind != "port" || d.Key != "udp/53" || d.Got != "missing" {
		t.Errorf("second difference %s, want port udp/53 missing", d)
	}
	if d := diffs[2]; d.Kind != "table" || d.Key != "ipvs service 0x01000009" || d.Want != "absent" {
		t.Errorf("third difference %s, want the orphan service", d)
	}
	if d := differences("t", newModel(), want); len(d) != 1+3+3 || d[0].Got != "missing" {
		t.Errorf("differences of a missing table and services: %q", d)
	}
}
