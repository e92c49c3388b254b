package nft

// Tests of Update: on models (what one Update touches), and in the kernel, each in a fresh
// network namespace, against Sync of the same State.

import (
	"errors"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"
	"github.com/shoal/shoal/mesh"
)

// updateIn runs b.Update(u) in n and fails the test on error.
func updateIn(t *testing.T, n ns.NetNS, b *Balancer, u mesh.Update) mesh.Changes {
	t.Helper()
	var ch mesh.Changes
	inNetns(t, n, func() error {
		var err error
		ch, err = b.Update(u)
		return err
	})
	return ch
}

// readModel reads b's table in n.
func readModel(t *testing.T, n ns.NetNS, b *Balancer) *tableModel {
	t.Helper()
	var m *tableModel
	inNetns(t, n, func() error {
		var err error
		m, err = b.read()
		return err
	})
	return m
}

// withUpdate is s after u, as mesh.Index (tested against a plain rewrite of the State in
// package mesh) makes it: VIPs and ports in key order.
func withUpdate(s mesh.State, u mesh.Update) mesh.State {
	x := mesh.NewIndex(s)
	x.Apply(u)
	return x.State()
}

// requireBookkeeping fails the test unless what b keeps for the next Update is s: the applied
// table is the kernel's, object for object; each pick chain's users are those of s; the index
// holds s.
func requireBookkeeping(t *testing.T, n ns.NetNS, b *Balancer, s mesh.State) {
	t.Helper()
	if d := differences(b.Table(), readModel(t, n, b), b.applied); len(d) != 0 {
		t.Fatalf("the applied table differs from the kernel's in %d ways, first: %s", len(d), d[0])
	}
	if got, want := b.applied.pickUsers, b.desired(s, nil).pickUsers; !maps.Equal(got, want) {
		t.Fatalf("pick chain users %v, want %v", got, want)
	}
	if got, want := b.index.State(), canonical(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("index:\n got  %+v\n want %+v", got, want)
	}
}

// updateBase has 6 VIPs of 3 backends but the last, of 1 (the only user of pick-vip-1); an
// ingress port of 2 backends, a host port of 1 (the only user of pick-port-1), and an ingress
// port without backends.
func updateBase() mesh.State {
	s := testState(6, 3)
	s.VIPs[5].Backends = s.VIPs[5].Backends[:1]
	return s
}

// withBackends is v with the given backends of test VIP i.
func withBackends(v mesh.VIP, i int, backends ...int) mesh.VIP {
	v.Backends = nil
	for _, j := range backends {
		v.Backends = append(v.Backends, backendIP(i, j))
	}
	return v
}

var updateCases = []struct {
	name   string
	update func(s mesh.State) mesh.Update
}{
	{"backend replaced", func(s mesh.State) mesh.Update {
		return mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[2], 2, 0, 7, 2)}}
	}},
	{"backend added: a pick chain made", func(s mesh.State) mesh.Update {
		return mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[2], 2, 0, 1, 2, 3)}}
	}},
	{"backend removed: a pick chain made", func(s mesh.State) mesh.Update {
		return mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[2], 2, 0, 2)}}
	}},
	{"last backends removed: the VIP refuses", func(s mesh.State) mesh.Update {
		return mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[2], 2)}}
	}},
	{"backend added: the only user leaves its pick chain", func(s mesh.State) mesh.Update {
		return mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[5], 5, 0, 1, 2)}}
	}},
	{"backends in another order: nothing", func(s mesh.State) mesh.Update {
		return mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[1], 1, 2, 0, 1)}}
	}},
	{"VIP added", func(mesh.State) mesh.Update {
		return mesh.Update{VIPs: []mesh.VIP{testVIP(6, 3)}}
	}},
	{"VIP added with a pick chain of its own", func(mesh.State) mesh.Update {
		return mesh.Update{VIPs: []mesh.VIP{testVIP(6, 5)}}
	}},
	{"VIP removed", func(s mesh.State) mesh.Update {
		return mesh.Update{RemovedVIPs: []netip.Addr{s.VIPs[3].Addr}}
	}},
	{"VIP removed with its pick chain", func(s mesh.State) mesh.Update {
		return mesh.Update{RemovedVIPs: []netip.Addr{s.VIPs[5].Addr}}
	}},
	{"VIP moved to another service", func(s mesh.State) mesh.Update {
		moved := withBackends(testVIP(9, 0), 9, 0, 1)
		moved.Addr = s.VIPs[4].Addr
		return mesh.Update{RemovedVIPs: []netip.Addr{moved.Addr}, VIPs: []mesh.VIP{moved}}
	}},
	{"port added", func(mesh.State) mesh.Update {
		return mesh.Update{Ports: []mesh.Port{{Service: "svc0003", Name: "api", Protocol: mesh.TCP, Published: 9090, Mode: mesh.Host,
			Backends: []mesh.Backend{{Addr: backendIP(3, 0), Port: 90}, {Addr: backendIP(3, 1), Port: 90}}}}}
	}},
	{"port removed with its pick chain", func(mesh.State) mesh.Update {
		return mesh.Update{RemovedPorts: []mesh.PortKey{{Protocol: mesh.UDP, Published: 53}}}
	}},
	{"port replaced: ingress to host, a backend more", func(s mesh.State) mesh.Update {
		p := s.Ports[0]
		p.Mode = mesh.Host
		p.Backends = append(slices.Clone(p.Backends), mesh.Backend{Addr: backendIP(0, 2), Port: 80})
		return mesh.Update{Ports: []mesh.Port{p}}
	}},
	{"port moved to another service", func(mesh.State) mesh.Update {
		return mesh.Update{RemovedPorts: []mesh.PortKey{{Protocol: mesh.TCP, Published: 9000}},
			Ports: []mesh.Port{{Service: "svc0004", Name: "mail", Protocol: mesh.TCP, Published: 9000, Mode: mesh.Ingress,
				Backends: []mesh.Backend{{Addr: backendIP(4, 0), Port: 25}}}}}
	}},
	{"absent keys removed: nothing", func(mesh.State) mesh.Update {
		return mesh.Update{RemovedVIPs: []netip.Addr{testVIP(40, 0).Addr}, RemovedPorts: []mesh.PortKey{{Protocol: mesh.UDP, Published: 8080}}}
	}},
	{"several at once", func(s mesh.State) mesh.Update {
		return mesh.Update{
			VIPs:         []mesh.VIP{withBackends(s.VIPs[0], 0, 1, 2), testVIP(7, 1), withBackends(s.VIPs[5], 5, 4, 5, 6, 7)},
			RemovedVIPs:  []netip.Addr{s.VIPs[1].Addr, s.VIPs[2].Addr},
			RemovedPorts: []mesh.PortKey{{Protocol: mesh.UDP, Published: 53}},
			Ports: []mesh.Port{{Service: "svc0001", Name: "dns", Protocol: mesh.UDP, Published: 5353, Mode: mesh.Host,
				Backends: []mesh.Backend{{Addr: backendIP(1, 0), Port: 5353}}}},
		}
	}},
}

// Update gives the table Sync gives for the State with the Update applied, slot for slot, with
// the same Changes; and keeps what the next Update needs.
func TestUpdateGivesTheTableSyncGives(t *testing.T) {
	for _, sel := range []mesh.Selection{mesh.Random, mesh.Hash} {
		for _, c := range updateCases {
			t.Run(sel.String()+"/"+c.name, func(t *testing.T) {
				n := nodeNetns(t)
				viaUpdate := newTestBalancer(t, Config{Table: "shoal-update", Selection: sel})
				viaSync := newTestBalancer(t, Config{Table: "shoal-sync", Selection: sel})
				s := updateBase()
				syncIn(t, n, viaUpdate, s)
				syncIn(t, n, viaSync, s)

				u := c.update(s)
				after := withUpdate(s, u)
				if err := after.Validate(); err != nil {
					t.Fatalf("the case's State is invalid: %v", err)
				}
				got, want := updateIn(t, n, viaUpdate, u), syncIn(t, n, viaSync, after)
				if got != want {
					t.Errorf("Update changed %+v, Sync %+v", got, want)
				}
				requireClean(t, n, viaUpdate, after)
				if d := differences(viaSync.Table(), readModel(t, n, viaUpdate), readModel(t, n, viaSync)); len(d) != 0 {
					t.Fatalf("the tables of Update and Sync differ in %d ways, first: %s", len(d), d[0])
				}
				requireBookkeeping(t, n, viaUpdate, after)
				if ch := syncIn(t, n, viaUpdate, after); ch.Changed() {
					t.Errorf("Sync of the same State after the Update changed %+v", ch)
				}
			})
		}
	}
}

// One endpoint change touches one VIP's objects: the models given to plan hold that VIP alone,
// and the batch deletes one element and adds one in the backends map and in the hairpin set, as
// Sync's does.
func TestUpdateOfOneBackendTouchesOneVIP(t *testing.T) {
	b := modelBalancer(t)
	s := testState(50, 3)
	b.applied, b.index = b.desired(s, nil), mesh.NewIndex(s)
	u := mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[17], 17, 0, 9, 2)}}
	c := b.touched(u)
	for _, m := range []*tableModel{c.got, c.want} {
		if !slices.Equal(slices.Collect(maps.Keys(m.vips)), []netip.Addr{s.VIPs[17].Addr}) || len(m.ports) != 0 {
			t.Errorf("model of %d VIPs and %d ports, want VIP %s alone", len(m.vips), len(m.ports), s.VIPs[17].Addr)
		}
	}
	bt := plan(c.got, c.want)
	if messages, elements := bt.messages(); messages != 4 || elements != 4 || bt.changes != (mesh.Changes{Updated: 1}) {
		t.Errorf("the batch has %d messages and %d elements and changes %+v, want 4, 4 and 1 updated", messages, elements, bt.changes)
	}
}

func TestUpdateWithoutAppliedStateFailsWithErrNoState(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	u := mesh.Update{VIPs: []mesh.VIP{testVIP(0, 1)}}
	requireNoState := func(when string) {
		t.Helper()
		inNetns(t, n, func() error {
			if _, err := b.Update(u); !errors.Is(err, mesh.ErrNoState) {
				t.Errorf("Update %s = %v, want ErrNoState", when, err)
			}
			return nil
		})
	}
	requireNoState("before the first Sync")
	if tableExists(t, n, b.Table()) {
		t.Fatal("Update without a State made the table")
	}
	s := testState(2, 2)
	syncIn(t, n, b, s)
	inNetns(t, n, b.Remove)
	requireNoState("after Remove")

	// A Sync gives Update a State again.
	syncIn(t, n, b, s)
	if ch := updateIn(t, n, b, u); ch != (mesh.Changes{Updated: 1}) {
		t.Errorf("Update after Sync changed %+v, want 1 updated", ch)
	}
	requireClean(t, n, b, withUpdate(s, u))
}

func TestUpdateRefusesInvalidUpdatesAndChangesNothing(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := testState(3, 2)
	syncIn(t, n, b, s)
	before := ruleHandles(t, n, b.Table())

	other := testVIP(7, 1)
	other.Addr = s.VIPs[1].Addr
	badBackend := testVIP(5, 2)
	badBackend.Backends[1] = netip.MustParseAddr("fd00::1")
	for _, c := range []struct {
		name   string
		update mesh.Update
		field  string
	}{
		{"backend IPv6", mesh.Update{VIPs: []mesh.VIP{badBackend}}, "VIPs[0].Backends[1]"},
		{"VIP of another service kept", mesh.Update{VIPs: []mesh.VIP{other}}, "VIPs[0].Addr"},
		{"backend is a VIP", mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[0], 0, 0), {Service: "x", Addr: backendIP(0, 0)}}},
			"VIPs[0].Backends[0]"},
		{"port removed twice", mesh.Update{RemovedPorts: []mesh.PortKey{{Protocol: mesh.TCP, Published: 8080}, {Protocol: mesh.TCP, Published: 8080}}},
			"RemovedPorts[1]"},
	} {
		inNetns(t, n, func() error {
			_, err := b.Update(c.update)
			var fe *mesh.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("%s: Update = %v, want a FieldError for %s", c.name, err, c.field)
			}
			return nil
		})
	}
	requireClean(t, n, b, s)
	if after := ruleHandles(t, n, b.Table()); !reflect.DeepEqual(after, before) {
		t.Errorf("refused Updates changed rules:\n before %v\n after  %v", before, after)
	}
	requireBookkeeping(t, n, b, s)
}

// deleteVIPBackend deletes the element of a slot of VIP a from vip-backends, by hand.
func deleteVIPBackend(t *testing.T, n ns.NetNS, table string, a netip.Addr, slot uint32) {
	t.Helper()
	inNetns(t, n, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tbl := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
		key := slotBytes(addrBytes(a), slot)
		if err := c.SetDeleteElements(&nftables.Set{Table: tbl, Name: setVIPBackends}, []nftables.SetElement{{Key: key}}); err != nil {
			return err
		}
		return c.Flush()
	})
}

// An Update whose batch the kernel refuses — the table was changed by hand — rebuilds the table
// from the applied State with the Update, and the next Update is piecewise again.
func TestUpdateRebuildsWhenTheKernelRefusesItsBatch(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(t *testing.T, n ns.NetNS, b *Balancer, s mesh.State)
	}{
		{"ruleset flushed", func(t *testing.T, n ns.NetNS, _ *Balancer, _ mesh.State) { flushRuleset(t, n) }},
		// The Update below deletes the element of slot 1 of VIP 1: already gone.
		{"backend element deleted", func(t *testing.T, n ns.NetNS, b *Balancer, s mesh.State) {
			deleteVIPBackend(t, n, b.Table(), s.VIPs[1].Addr, 1)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := nodeNetns(t)
			b := newTestBalancer(t, Config{})
			s := testState(3, 2)
			syncIn(t, n, b, s)
			c.edit(t, n, b, s)

			u := mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[1], 1, 0, 5)}, RemovedVIPs: []netip.Addr{s.VIPs[2].Addr}}
			s = withUpdate(s, u)
			if ch := updateIn(t, n, b, u); ch != (mesh.Changes{Added: 2 + 3, Rebuilt: true}) {
				t.Errorf("Update changed %+v, want the table rebuilt with 5 added", ch)
			}
			requireClean(t, n, b, s)
			requireBookkeeping(t, n, b, s)

			u = mesh.Update{VIPs: []mesh.VIP{withBackends(s.VIPs[0], 0, 1, 6)}}
			if ch := updateIn(t, n, b, u); ch != (mesh.Changes{Updated: 1}) {
				t.Errorf("the next Update changed %+v, want 1 updated", ch)
			}
			requireClean(t, n, b, withUpdate(s, u))
		})
	}
}

// Sync and Repair keep what Update needs: an Update after each gives the table Sync would.
func TestUpdateAfterSyncAndRepair(t *testing.T) {
	n := nodeNetns(t)
	b := newTestBalancer(t, Config{})
	s := updateBase()
	syncIn(t, n, b, s)

	// A Sync that changes VIPs, a port, pick chains and SNAT, piece by piece.
	s.VIPs = append(s.VIPs[1:], testVIP(8, 4))
	s.VIPs[0] = withBackends(s.VIPs[0], 1, 0)
	s.Ports = s.Ports[:2]
	s.SNAT = netip.MustParseAddr("198.19.255.253")
	if ch := syncIn(t, n, b, s); ch.Rebuilt || !ch.Changed() {
		t.Fatalf("Sync changed %+v, want a piecewise change", ch)
	}
	requireBookkeeping(t, n, b, s)
	u := mesh.Update{VIPs: []mesh.VIP{withBackends(testVIP(8, 0), 8, 0, 1)}, RemovedVIPs: []netip.Addr{s.VIPs[4].Addr}}
	s = withUpdate(s, u)
	updateIn(t, n, b, u)
	requireClean(t, n, b, s)
	requireBookkeeping(t, n, b, s)

	// Repair of a flushed table to a State with a VIP less than the applied one, then an Update.
	flushRuleset(t, n)
	s.VIPs = s.VIPs[1:]
	if ch := repair(t, n, b, s); !ch.Rebuilt {
		t.Fatalf("Repair changed %+v, want a rebuild", ch)
	}
	requireBookkeeping(t, n, b, s)
	u = mesh.Update{Ports: []mesh.Port{{Service: "svc0009", Protocol: mesh.TCP, Published: 7000, Mode: mesh.Ingress,
		Backends: []mesh.Backend{{Addr: backendIP(9, 0), Port: 70}}}}}
	s = withUpdate(s, u)
	if ch := updateIn(t, n, b, u); ch != (mesh.Changes{Added: 1}) {
		t.Errorf("Update after Repair changed %+v, want 1 added", ch)
	}
	requireClean(t, n, b, s)
	requireBookkeeping(t, n, b, s)
}

// A backend two VIPs list keeps its hairpin element until the last of them drops it, and the
// applied table then is the one a Sync of the same State builds.
func TestUpdateKeepsTheHairpinElementOfASharedBackend(t *testing.T) {
	b := modelBalancer(t)
	s := testState(2, 2)
	shared := s.VIPs[0].Backends[0]
	s.VIPs[1].Backends = []netip.Addr{shared, s.VIPs[1].Backends[1]}
	b.applied, b.index = b.desired(s, nil), mesh.NewIndex(s)
	key := string(hairpinKey(shared.As4()))
	for i, wantDeleted := range []bool{false, true} {
		v := s.VIPs[i]
		v.Backends = slices.DeleteFunc(slices.Clone(v.Backends), func(a netip.Addr) bool { return a == shared })
		u := mesh.Update{VIPs: []mesh.VIP{v}}
		if err := b.index.Check(u); err != nil {
			t.Fatal(err)
		}
		c := b.touched(u)
		bt := plan(c.got, c.want)
		if deleted := slices.Contains(elemKeys(bt.delElems)[setHairpin], key); deleted != wantDeleted {
			t.Errorf("VIP %d drops %s: its hairpin element deleted %t, want %t", i, shared, deleted, wantDeleted)
		}
		b.applied.commit(c)
		b.index.Apply(u)
		if again := plan(b.applied, b.desired(b.index.State(), b.applied)); !again.empty() {
			t.Errorf("after VIP %d dropped %s, a Sync of the same State would still change %+v", i, shared, again.changes)
		}
	}
}
