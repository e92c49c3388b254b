package controlapi_test

// Tests of the checks of a service's pins against its networks, their
// bindings and the other services' pins (checkPins).

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// addBindings writes bindings to the store, as the allocator would.
func (e *testEnv) addBindings(t *testing.T, bs ...*api.IPBinding) {
	t.Helper()
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		for _, b := range bs {
			if err := tx.Create(proto.Clone(b).(*api.IPBinding)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("create bindings: %v", err)
	}
}

func slotBinding(id string, svc *api.Service, nw *api.Network, slot uint64, address string) *api.IPBinding {
	return &api.IPBinding{Id: id, ServiceId: svc.Id, ServiceName: serviceNameOf(svc), NetworkId: nw.Id,
		Kind: api.IPBinding_KIND_SLOT, Slot: slot, Address: address}
}

// newPinsEnv is a cluster with networks front (10.20.0.0/24 with aux
// address 10.20.0.200, and fd00:20::/64) and back (10.30.0.0/24), and
// services on front: api, whose bindings hold 10.20.0.9 (slot 2),
// 10.20.0.50 (slot 5, kept after a scale-down) and 10.20.0.2 (its VIP);
// mon, global, whose binding on node host-a holds 10.20.0.3; and db, whose
// spec pins 10.20.0.60 to slot 1, not bound yet.
func newPinsEnv(t *testing.T) (e *testEnv, front, back *api.Network) {
	t.Helper()
	e = newTestEnv(t)
	e.addNodes(t, workerNode(nodeA, "host-a", api.NodeState_NODE_STATE_READY))
	frontSpec := networkSpec("front", "10.20.0.0/24", "fd00:20::/64")
	frontSpec.Ipam[0].AuxAddresses = map[string]string{"lb": "10.20.0.200"}
	front = e.createNetwork(t, frontSpec)
	back = e.createNetwork(t, networkSpec("back", "10.30.0.0/24"))

	apiSpec := validSpec("api")
	withNetworks("front")(apiSpec)
	apiSvc := e.create(t, apiSpec)
	monSpec := validSpec("mon")
	withNetworks("front")(monSpec)
	monSpec.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	mon := e.create(t, monSpec)
	dbSpec := validSpec("db")
	withPins(map[uint64]string{1: "10.20.0.60"}, "")(dbSpec)
	e.create(t, dbSpec)

	held := slotBinding("bapi5", apiSvc, front, 5, "10.20.0.50/24")
	held.HeldSince = timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	vip := &api.IPBinding{Id: "bapivip", ServiceId: apiSvc.Id, ServiceName: "api", NetworkId: front.Id, Kind: api.IPBinding_KIND_VIP, Address: "10.20.0.2/24"}
	node := &api.IPBinding{Id: "bmona", ServiceId: mon.Id, ServiceName: "mon", NetworkId: front.Id, Kind: api.IPBinding_KIND_NODE, NodeId: nodeA, Address: "10.20.0.3/24"}
	e.addBindings(t, slotBinding("bapi2", apiSvc, front, 2, "10.20.0.9/24"), held, vip, node)
	return e, front, back
}

func TestCreateServiceChecksPins(t *testing.T) {
	const (
		ips     = "spec.task.networks[0].ips[1]"
		ipRange = "spec.task.networks[0].ip_range"
	)
	pins := func(addr, r string) func(*api.ServiceSpec) {
		if addr == "" {
			return withPins(nil, r)
		}
		return withPins(map[uint64]string{1: addr}, r)
	}
	refused := []struct {
		name   string
		change func(*api.ServiceSpec)
		field  string
		reason string
	}{
		{"an address of no subnet", pins("10.21.0.5", ""), ips, "10.21.0.5 is in no subnet of network front (10.20.0.0/24, fd00:20::/64)"},
		{"the network address", pins("10.20.0.0", ""), ips, "10.20.0.0 is the network address of network front's subnet 10.20.0.0/24"},
		{"the broadcast address", pins("10.20.0.255", ""), ips, "10.20.0.255 is the broadcast address of network front's subnet 10.20.0.0/24"},
		{"the gateway", pins("10.20.0.1", ""), ips, "10.20.0.1 is the gateway of network front's subnet 10.20.0.0/24"},
		{"the IPv6 gateway", pins("fd00:20::1", ""), ips, "fd00:20::1 is the gateway of network front's subnet fd00:20::/64"},
		{"the IPv6 subnet-router anycast address", pins("fd00:20::", ""), ips, "fd00:20:: is the subnet-router anycast address of network front's subnet fd00:20::/64"},
		{"another network's address", func(s *api.ServiceSpec) {
			s.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "front"}, {Target: "back", Ips: map[uint64]string{1: "10.20.0.5"}}}
		}, "spec.task.networks[1].ips[1]", "10.20.0.5 is in no subnet of network back (10.30.0.0/24)"},
		{"a range across subnets", pins("", "10.20.0.250-10.20.1.5"), ipRange, "10.20.0.250-10.20.1.5 is not inside a subnet of network front"},
		{"a range outside", pins("", "10.40.0.0/24"), ipRange, "10.40.0.0/24 is not inside a subnet of network front (10.20.0.0/24, fd00:20::/64)"},
		{"a range starting at the gateway", pins("", "10.20.0.1-10.20.0.10"), ipRange, "slot 1's address 10.20.0.1 is the gateway"},
		{"a range ending at the broadcast address", pins("", "10.20.0.253-10.20.0.255"), ipRange, "slot 3's address 10.20.0.255 is the broadcast address"},
		{"an address another service's slot holds", pins("10.20.0.9", ""), ips, "10.20.0.9 on network front is held by service api slot 2"},
		{"an address kept after a scale-down", pins("10.20.0.50", ""), ips,
			"10.20.0.50 on network front is held by service api slot 5 (kept since a scale-down; netctl ip release api 5 frees it)"},
		{"another service's virtual IP", pins("10.20.0.2", ""), ips, "10.20.0.2 on network front is held by service api as its virtual IP"},
		{"a global service's address", pins("10.20.0.3", ""), ips, "10.20.0.3 on network front is held by service mon on node " + nodeA},
		{"a range over a held address", pins("", "10.20.0.8/30"), ipRange, "slot 2's address 10.20.0.9 on network front is held by service api slot 2"},
		{"an address another service pins", pins("10.20.0.60", ""), ips, "10.20.0.60 on network front is pinned by service db to its slot 1"},
		{"a range over an address another service pins", pins("", "10.20.0.59-10.20.0.61"), ipRange, "slot 2's address 10.20.0.60 on network front is pinned by service db"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			e, _, _ := newPinsEnv(t)
			before := e.snapshot(t)
			spec := validSpec("web")
			tc.change(spec)
			_, err := e.srv.CreateService(t.Context(), &api.CreateServiceRequest{Spec: spec})
			assertCode(t, err, codes.InvalidArgument, tc.field+": "+tc.reason)
			e.assertUnchanged(t, before)
		})
	}

	accepted := []struct {
		name   string
		change func(*api.ServiceSpec)
	}{
		{"a free address", pins("10.20.0.10", "")},
		{"an aux address", pins("10.20.0.200", "")},
		{"an IPv6 address", pins("fd00:20::10", "")},
		{"a range over free addresses", pins("", "10.20.0.100-10.20.0.102")},
		{"a range whose held address no slot gets yet", pins("", "10.20.0.6-10.20.0.9")}, // slot 4 would get .9
		{"an address held on another network", func(s *api.ServiceSpec) {
			s.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "back", Ips: map[uint64]string{1: "10.30.0.9"}}}
		}},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			e, _, _ := newPinsEnv(t)
			spec := validSpec("web")
			tc.change(spec)
			e.create(t, spec)
		})
	}
}

// Pins are stored in canonical form, so a spec naming the same addresses
// again is no change.
func TestPinsAreStoredCanonical(t *testing.T) {
	e, front, _ := newPinsEnv(t)
	spec := validSpec("web")
	withPins(map[uint64]string{1: "FD00:20:0::5", 2: "10.20.0.5"}, "")(spec)
	web := e.create(t, spec)
	att := e.service(t, web.Id).Spec.Task.Networks[0]
	if att.Target != front.Id || att.Ips[1] != "fd00:20::5" || att.Ips[2] != "10.20.0.5" {
		t.Errorf("stored attachment %v, want target %s and pins fd00:20::5, 10.20.0.5", att, front.Id)
	}
	again := validSpec("web")
	withPins(map[uint64]string{1: "fd00:20::5", 2: "10.20.0.5"}, "")(again)
	resp, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: again})
	if err != nil {
		t.Fatalf("UpdateService: %v", err)
	}
	if resp.Service.Meta.Version != web.Meta.Version {
		t.Error("naming the same pins again changed the service")
	}
}

// An update checks the pins it adds against bindings and other services;
// the ones the service had stay its own.
func TestUpdateServiceChecksThePinsItAdds(t *testing.T) {
	tests := []struct {
		name   string
		change func(*api.ServiceSpec)
		// want is the refusal, empty for an update that must be accepted.
		want string
	}{
		{"a scale", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 1 }, ""},
		{"a new image", func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:2" }, ""},
		{"slot 1's address moved to slot 3", func(s *api.ServiceSpec) {
			s.Task.Networks[0].Ips = map[uint64]string{1: "10.20.0.71", 3: "10.20.0.70"}
		}, "spec.task.networks[0].ips[3]: 10.20.0.70 on network front is held by service web slot 1"},
		{"a scale-up into a held address", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 5 },
			"spec.task.networks[0].ip_range: slot 5's address 10.20.0.50 on network front is held by service api slot 5"},
		{"a new pin another service's slot holds", func(s *api.ServiceSpec) { s.Task.Networks[0].Ips[2] = "10.20.0.9" },
			"spec.task.networks[0].ips[2]: 10.20.0.9 on network front is held by service api slot 2"},
		{"a gateway pin", func(s *api.ServiceSpec) { s.Task.Networks[0].Ips[2] = "10.20.0.1" }, "is the gateway"},
		{"start-first", withUpdate(&api.UpdateConfig{Order: api.UpdateConfig_ORDER_START_FIRST}), "spec.update.order: start-first"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, front, _ := newPinsEnv(t)
			// web pins slot 1 to 10.20.0.70, and its slots 2 and 3 get
			// 10.20.0.47 and .48 of its range (slot 5 would get .50).
			spec := validSpec("web")
			withPins(map[uint64]string{1: "10.20.0.70"}, "10.20.0.46-10.20.0.50")(spec)
			web := e.create(t, spec)
			e.addBindings(t, slotBinding("bweb1", web, front, 1, "10.20.0.70/24"), slotBinding("bweb2", web, front, 2, "10.20.0.47/24"))
			before := e.snapshot(t)
			cur := e.service(t, web.Id)
			next := proto.Clone(cur.Spec).(*api.ServiceSpec)
			tc.change(next)
			_, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: cur.Meta.Version, Spec: next})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("UpdateService: %v", err)
				}
				return
			}
			assertCode(t, err, codes.InvalidArgument, tc.want)
			e.assertUnchanged(t, before)
		})
	}
}

// Two services pinning one address (written before the check, or racing
// it) can each still be scaled and changed: only new pins are checked.
func TestAnOldPinClashLocksNoService(t *testing.T) {
	e, front, _ := newPinsEnv(t)
	spec := validSpec("old")
	withPins(map[uint64]string{1: "10.20.0.60"}, "")(spec)
	spec.Task.Networks[0].Target = front.Id
	old := &api.Service{Id: "svcold", Spec: spec, SpecVersion: 1}
	if err := e.store.Update(t.Context(), func(tx store.Tx) error { return tx.Create(old) }); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.update(t, old.Id, func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 7 })
	e.update(t, old.Id, func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:2" })
}

func TestRollbackChecksPinsAgain(t *testing.T) {
	t.Run("an address taken meanwhile", func(t *testing.T) {
		e, front, _ := newPinsEnv(t)
		spec := validSpec("web")
		withPins(map[uint64]string{1: "10.20.0.70"}, "")(spec)
		web := e.create(t, spec)
		e.update(t, web.Id, func(s *api.ServiceSpec) { s.Task.Networks[0].Ips[1] = "10.20.0.71" })
		e.addBindings(t, slotBinding("bapi7", e.service(t, e.serviceID(t, "api")), front, 7, "10.20.0.70/24"))
		before := e.snapshot(t)
		_, err := e.rollback(t, web.Id)
		assertCode(t, err, codes.InvalidArgument, "spec.task.networks[0].ips[1]: 10.20.0.70 on network front is held by service api slot 7")
		e.assertUnchanged(t, before)
	})
	t.Run("a range too short for a scale made since", func(t *testing.T) {
		e, _, _ := newPinsEnv(t)
		spec := validSpec("web")
		withPins(nil, "10.20.0.100-10.20.0.102")(spec)
		web := e.create(t, spec)
		e.update(t, web.Id, func(s *api.ServiceSpec) { s.Task.Networks[0].IpRange = "10.20.0.100-10.20.0.109" })
		e.update(t, web.Id, func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 5 })
		before := e.snapshot(t)
		_, err := e.rollback(t, web.Id)
		assertCode(t, err, codes.InvalidArgument, "spec.task.networks[0].ip_range: 10.20.0.100-10.20.0.102 holds 3 addresses, fewer than the 5 replicas")
		e.assertUnchanged(t, before)
	})
}

// serviceID is the ID of the service named name.
func (e *testEnv) serviceID(t *testing.T, name string) string {
	t.Helper()
	for _, s := range e.services(t) {
		if serviceNameOf(s) == name {
			return s.Id
		}
	}
	t.Fatalf("no service %s", name)
	return ""
}
