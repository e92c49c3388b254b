package ipvs

// Tests of Update on models alone: what one Update plans and leaves applied, against what Sync
// of the same State plans; the mark cursor; the refusals that come before any kernel call.

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/shoal/shoal/mesh"
)

// appliedBalancer returns a Balancer that holds s as applied, as a Sync of s leaves it, without
// a kernel.
func appliedBalancer(t *testing.T, s mesh.State) *Balancer {
	t.Helper()
	b := modelBalancer(t, mesh.Random)
	b.applied = desired(t, b, s, nil)
	b.index, b.cursor = mesh.NewIndex(s), cursorOf(b.applied)
	return b
}

// withUpdate is s after u, as mesh.Index (tested against a plain rewrite of the State in
// package mesh) makes it: VIPs and ports in key order.
func withUpdate(s mesh.State, u mesh.Update) mesh.State {
	x := mesh.NewIndex(s)
	x.Apply(u)
	return x.State()
}

// updateBase has 6 VIPs, the last without backends (RejectMark); an ingress port, a host port
// and an ingress port without backends.
func updateBase() mesh.State {
	s := testState(6, 3)
	s.VIPs[5].Backends = nil
	return s
}

// vipWith is VIP i of testState with the given backends.
func vipWith(i int, backends ...int) mesh.VIP {
	v := testState(i+1, 0).VIPs[i]
	for _, j := range backends {
		v.Backends = append(v.Backends, ip4(1<<14+10*i+j))
	}
	return v
}

var updateCases = []struct {
	name   string
	update mesh.Update
}{
	{"backend replaced", mesh.Update{VIPs: []mesh.VIP{vipWith(2, 0, 7, 2)}}},
	{"backends removed: the VIP refuses", mesh.Update{VIPs: []mesh.VIP{vipWith(2)}}},
	{"backends given to a VIP that refused", mesh.Update{VIPs: []mesh.VIP{vipWith(5, 1, 2)}}},
	{"VIPs added", mesh.Update{VIPs: []mesh.VIP{vipWith(6, 0), vipWith(7, 0, 1), vipWith(8)}}},
	{"VIP removed, another added", mesh.Update{RemovedVIPs: []netip.Addr{ip4(3)}, VIPs: []mesh.VIP{vipWith(6, 0)}}},
	{"VIP moved to another service", mesh.Update{RemovedVIPs: []netip.Addr{ip4(2)},
		VIPs: []mesh.VIP{{Service: "svc9", Name: "api", Network: "nw2", Addr: ip4(2), Backends: []netip.Addr{ip4(1<<14 + 90)}}}}},
	{"labels changed", mesh.Update{VIPs: []mesh.VIP{{Service: "svc1", Name: "web-renamed", Network: "nw1", Addr: ip4(2),
		Backends: vipWith(1, 0, 1, 2).Backends}}}},
	{"port added", mesh.Update{Ports: []mesh.Port{{Service: "svc3", Protocol: mesh.TCP, Published: 7000, Mode: mesh.Host,
		Backends: []mesh.Backend{{Addr: ip4(1<<14 + 30), Port: 70}}}}}},
	{"port removed", mesh.Update{RemovedPorts: []mesh.PortKey{{Protocol: mesh.UDP, Published: 53}}}},
	{"ingress port turned host: a mark of the other kind", mesh.Update{Ports: []mesh.Port{{Service: "svc0", Name: "web-0",
		Protocol: mesh.TCP, Published: 8080, Mode: mesh.Host, Backends: []mesh.Backend{{Addr: ip4(1 << 14), Port: 80}}}}}},
	{"port moved to another service", mesh.Update{RemovedPorts: []mesh.PortKey{{Protocol: mesh.TCP, Published: 9000}},
		Ports: []mesh.Port{{Service: "svc4", Protocol: mesh.TCP, Published: 9000, Mode: mesh.Ingress,
			Backends: []mesh.Backend{{Addr: ip4(1<<14 + 40), Port: 25}}}}}},
	{"absent keys removed", mesh.Update{RemovedVIPs: []netip.Addr{ip4(77)}, RemovedPorts: []mesh.PortKey{{Protocol: mesh.UDP, Published: 1}}}},
}

// Update plans what Sync of the State with the Update applied plans — the same marks, IPVS
// changes and mark elements — and leaves applied the model Sync would.
func TestUpdatePlansWhatSyncPlans(t *testing.T) {
	for _, c := range updateCases {
		t.Run(c.name, func(t *testing.T) {
			s := updateBase()
			b := appliedBalancer(t, s)
			after := withUpdate(s, c.update)
			if err := after.Validate(); err != nil {
				t.Fatalf("the case's State is invalid: %v", err)
			}
			if err := b.index.Check(c.update); err != nil {
				t.Fatalf("Check = %v", err)
			}
			syncWant := desired(t, b, after, b.applied)
			syncPlan := makePlan(b.applied, syncWant)

			ch, err := b.touched(c.update)
			if err != nil {
				t.Fatal(err)
			}
			p := makePlan(ch.got, ch.want)
			if !reflect.DeepEqual(p.table, syncPlan.table) || !reflect.DeepEqual(p.services, syncPlan.services) {
				t.Errorf("Update plans\n table %+v\n ipvs  %+v\nSync plans\n table %+v\n ipvs  %+v",
					p.table, p.services, syncPlan.table, syncPlan.services)
			}
			if p.changes != syncPlan.changes {
				t.Errorf("Update changes %+v, Sync %+v", p.changes, syncPlan.changes)
			}
			b.applied.commit(ch)
			for name, pair := range map[string][2]any{
				"VIP elements":  {b.applied.vips, syncWant.vips},
				"port elements": {b.applied.ports, syncWant.ports},
				"services":      {b.applied.services, syncWant.services},
			} {
				if !reflect.DeepEqual(pair[0], pair[1]) {
					t.Errorf("applied %s %v, want those of Sync %v", name, pair[0], pair[1])
				}
			}
			// The cursor stays past every mark in use (it does not move back when one goes).
			for mark := range b.applied.services {
				if kind := mark & kindMask; ch.cursor[kind] <= mark&idMask {
					t.Errorf("mark cursor %#x of kind %#x, not past mark %s", ch.cursor[kind], kind, describeMark(mark))
				}
			}
		})
	}
}

func TestUpdateRefusesBeforeTheKernel(t *testing.T) {
	b := modelBalancer(t, mesh.Random)
	if _, err := b.Update(mesh.Update{VIPs: []mesh.VIP{vipWith(0, 1)}}); !errors.Is(err, mesh.ErrNoState) {
		t.Errorf("Update before Sync = %v, want ErrNoState", err)
	}

	s := updateBase()
	b = appliedBalancer(t, s)
	taken := vipWith(8, 0)
	taken.Addr = ip4(1)
	_, err := b.Update(mesh.Update{VIPs: []mesh.VIP{taken}})
	var fe *mesh.FieldError
	if !errors.As(err, &fe) || fe.Field != "VIPs[0].Addr" {
		t.Errorf("Update of another service's VIP = %v, want a FieldError for VIPs[0].Addr", err)
	}
	if got, want := b.applied.state(), canonical(s); !reflect.DeepEqual(got, want) {
		t.Errorf("a refused Update changed the applied model:\n got  %+v\n want %+v", got, want)
	}
	if got, want := b.index.State(), canonical(s); !reflect.DeepEqual(got, want) {
		t.Errorf("a refused Update changed the index:\n got  %+v\n want %+v", got, want)
	}
}

func TestMarkCursor(t *testing.T) {
	m := newModel()
	for _, mark := range []uint32{kindVIP | 3, kindVIP | 9, kindHost | 1} {
		m.services[mark] = service{}
	}
	c := cursorOf(m)
	if want := (markCursor{kindVIP: 10, kindHost: 2, kindIngress: 1}); !reflect.DeepEqual(c, want) {
		t.Fatalf("cursorOf = %v, want %v", c, want)
	}
	taken := func(marks ...uint32) func(uint32) bool {
		return func(m uint32) bool { return slices.Contains(marks, m) }
	}
	for _, step := range []struct {
		name  string
		kind  uint32
		taken func(uint32) bool
		want  uint32
	}{
		{"from the cursor", kindVIP, taken(), kindVIP | 10},
		{"past taken marks", kindVIP, taken(kindVIP|11, kindVIP|12), kindVIP | 13},
		{"another kind", kindIngress, taken(), kindIngress | 1},
	} {
		got, err := c.fresh(step.kind, step.taken)
		if err != nil || got != step.want {
			t.Errorf("%s: fresh = %s, %v; want %s", step.name, describeMark(got), err, describeMark(step.want))
		}
	}
	// At the last ID the search wraps to the first free one.
	c[kindHost] = idMask
	if got, err := c.fresh(kindHost, taken(kindHost|idMask, kindHost|1)); err != nil || got != kindHost|2 {
		t.Errorf("fresh at the last ID = %s, %v; want %s", describeMark(got), err, describeMark(kindHost|2))
	}
	if c[kindHost] != 3 {
		t.Errorf("cursor after wrapping %d, want 3", c[kindHost])
	}
}

// In the kernel, each Update after a Sync of the base State leaves exactly the State with the
// Update applied.
func TestKernelUpdate(t *testing.T) {
	n := ipvsNetns(t)
	b, err := New(Config{Table: "shoal-ipvs-test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range updateCases {
		t.Run(c.name, func(t *testing.T) {
			s := updateBase()
			in(t, n, func() error {
				_, err := b.Sync(s)
				return err
			})
			in(t, n, func() error {
				_, err := b.Update(c.update)
				return err
			})
			requireClean(t, n, b, withUpdate(s, c.update))
		})
	}
	in(t, n, b.Remove)
	in(t, n, func() error {
		if _, err := b.Update(updateCases[0].update); !errors.Is(err, mesh.ErrNoState) {
			t.Errorf("Update after Remove = %v, want ErrNoState", err)
		}
		return nil
	})
}
