package controlapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/controlapi"
	"github.com/shoal/shoal/orchestrator/store"
)

func networkSpec(name string, subnets ...string) *api.NetworkSpec {
	spec := &api.NetworkSpec{Annotations: &api.Annotations{Name: name}}
	for _, s := range subnets {
		spec.Ipam = append(spec.Ipam, &api.IPAMConfig{Subnet: s})
	}
	return spec
}

func (e *testEnv) createNetwork(t *testing.T, spec *api.NetworkSpec) *api.Network {
	t.Helper()
	resp, err := e.srv.CreateNetwork(t.Context(), &api.CreateNetworkRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateNetwork %s: %v", spec.GetAnnotations().GetName(), err)
	}
	return resp.Network
}

func (e *testEnv) removeNetwork(t *testing.T, ref string) {
	t.Helper()
	if _, err := e.srv.RemoveNetwork(t.Context(), &api.RemoveNetworkRequest{NetworkId: ref}); err != nil {
		t.Fatalf("RemoveNetwork %s: %v", ref, err)
	}
}

func (e *testEnv) networks(t *testing.T) []*api.Network {
	t.Helper()
	var nws []*api.Network
	e.store.View(func(tx store.ReadTx) { nws = tx.Networks() })
	return nws
}

func TestCreateNetworkRefusesInvalidSpecs(t *testing.T) {
	with := func(change func(s *api.NetworkSpec)) *api.NetworkSpec {
		s := networkSpec("front", "10.20.0.0/16")
		change(s)
		return s
	}
	ipam0 := func(change func(c *api.IPAMConfig)) *api.NetworkSpec {
		return with(func(s *api.NetworkSpec) { change(s.Ipam[0]) })
	}
	plugin := func(typ, config string) *api.NetworkSpec {
		return with(func(s *api.NetworkSpec) {
			s.Plugins = []*api.CNIPlugin{{Type: "bandwidth"}, {Type: typ, ConfigJson: config}}
		})
	}
	tests := []struct {
		name   string
		spec   *api.NetworkSpec
		field  string
		reason string
	}{
		{"no spec", nil, "spec", "missing"},
		{"no name", networkSpec("", "10.20.0.0/16"), "spec.annotations.name", "required"},
		{"a name with a dot", networkSpec("front.v1", "10.20.0.0/16"), "spec.annotations.name", "not a valid network name"},
		{"a name ending in -", networkSpec("front-", "10.20.0.0/16"), "spec.annotations.name", "not a valid network name"},
		{"a name of 64 characters", networkSpec(strings.Repeat("a", 64), "10.20.0.0/16"), "spec.annotations.name", "more than 63"},
		{"an empty label key", with(func(s *api.NetworkSpec) { s.Annotations.Labels = map[string]string{"": "x"} }), "spec.annotations.labels", "empty"},
		{"another driver", with(func(s *api.NetworkSpec) { s.Driver = "bridge" }), "spec.driver", `"bridge" is not a network driver`},
		{"no subnet", networkSpec("front"), "spec.ipam", "needs at least one IPv4 subnet"},
		{"only IPv6", networkSpec("front", "fd00:20::/64"), "spec.ipam", "needs at least one IPv4 subnet"},
		{"an empty subnet", networkSpec("front", "10.20.0.0/16", ""), "spec.ipam[1].subnet", "required"},
		{"a subnet that is no CIDR", networkSpec("front", "10.20.0.0"), "spec.ipam[0].subnet", "not a CIDR subnet"},
		{"host bits", networkSpec("front", "10.20.0.1/16"), "spec.ipam[0].subnet", "host bits set"},
		{"a /31", networkSpec("front", "10.20.0.0/31"), "spec.ipam[0].subnet", "subnet too small"},
		{"a /32", networkSpec("front", "10.20.0.0/32"), "spec.ipam[0].subnet", "subnet too small"},
		{"an IPv6 /127", networkSpec("front", "10.20.0.0/16", "fd00::/127"), "spec.ipam[1].subnet", "subnet too small"},
		{"a gateway that is no address", ipam0(func(c *api.IPAMConfig) { c.Gateway = "10.20.0" }), "spec.ipam[0].gateway", "not an IP address"},
		{"a gateway outside", ipam0(func(c *api.IPAMConfig) { c.Gateway = "10.21.0.1" }), "spec.ipam[0].gateway", "outside the subnet"},
		{"the network address as gateway", ipam0(func(c *api.IPAMConfig) { c.Gateway = "10.20.0.0" }), "spec.ipam[0].gateway", "not assignable"},
		{"an IPv6 gateway", ipam0(func(c *api.IPAMConfig) { c.Gateway = "fd00::1" }), "spec.ipam[0].gateway", "outside the subnet"},
		{"a range that does not parse", ipam0(func(c *api.IPAMConfig) { c.IpRange = "10.20.1.9-10.20.1.2" }), "spec.ipam[0].ip_range", "invalid range"},
		{"a range outside", ipam0(func(c *api.IPAMConfig) { c.IpRange = "10.21.0.0/24" }), "spec.ipam[0].ip_range", "outside the subnet"},
		{"an aux address outside", ipam0(func(c *api.IPAMConfig) {
			c.AuxAddresses = map[string]string{"a": "10.20.0.5", "router": "10.30.0.1"}
		}), "spec.ipam[0].aux_addresses[router]", "outside the subnet"},
		{"an aux address that does not parse", ipam0(func(c *api.IPAMConfig) { c.AuxAddresses = map[string]string{"b": "x"} }), "spec.ipam[0].aux_addresses[b]", "invalid range"},
		{"an aux address without a name", ipam0(func(c *api.IPAMConfig) { c.AuxAddresses = map[string]string{"": "10.20.0.5"} }), "spec.ipam[0].aux_addresses", "no name"},
		{"overlapping subnets", networkSpec("front", "10.20.0.0/16", "fd00::/64", "10.20.5.0/24"), "spec.ipam[2].subnet", "10.20.5.0/24 overlaps spec.ipam[0].subnet 10.20.0.0/16"},
		{"one subnet twice", networkSpec("front", "10.20.0.0/16", "10.20.0.0/16"), "spec.ipam[1].subnet", "overlaps spec.ipam[0].subnet"},
		{"a plugin without type", plugin("", ""), "spec.plugins[1].type", "required"},
		{"a plugin with a path", plugin("../../bin/sh", ""), "spec.plugins[1].type", "not a plugin name"},
		{"a plugin config that is no JSON", plugin("tuning", "{"), "spec.plugins[1].config_json", "not a JSON object"},
		{"a plugin config that is an array", plugin("tuning", "[]"), "spec.plugins[1].config_json", "not a JSON object"},
		{"a plugin config that is null", plugin("tuning", "null"), "spec.plugins[1].config_json", "not a JSON object"},
		{"a plugin config setting cniVersion", plugin("tuning", `{"cniVersion":"1.0.0"}`), "spec.plugins[1].config_json", `sets "cniVersion"`},
		{"a plugin config of another type", plugin("tuning", `{"type":"portmap"}`), "spec.plugins[1].config_json", "is not the plugin's type"},
	}
	e := newTestEnv(t)
	e.createNetwork(t, networkSpec("back", "10.99.0.0/16"))
	before := e.snapshot(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.srv.CreateNetwork(t.Context(), &api.CreateNetworkRequest{Spec: tc.spec})
			assertCode(t, err, codes.InvalidArgument, tc.field+": ", tc.reason)
			if msg := status.Convert(err).Message(); !strings.HasPrefix(msg, tc.field+": ") {
				t.Errorf("message %q does not start with the field %s", msg, tc.field)
			}
			e.assertUnchanged(t, before)
		})
	}
}

func TestCreateGetListRemoveNetwork(t *testing.T) {
	e := newTestEnv(t)
	spec := networkSpec("front", "10.20.0.0/16", "FD00:20::/64")
	spec.Annotations.Labels = map[string]string{"tier": "web"}
	spec.Ipam[0].IpRange = "10.20.1.0/24"
	spec.Ipam[0].AuxAddresses = map[string]string{"router": "10.20.0.2", "lb": "10.20.0.10-10.20.0.20"}
	spec.Attachable = true
	spec.Plugins = []*api.CNIPlugin{{Type: "bandwidth", ConfigJson: `{"type":"bandwidth","ingressRate":1000}`}, {Type: "tuning"}}
	sent := proto.Clone(spec).(*api.NetworkSpec)
	front := e.createNetwork(t, spec)
	if !proto.Equal(spec, sent) {
		t.Error("CreateNetwork changed the request's spec")
	}

	want := proto.Clone(sent).(*api.NetworkSpec)
	want.Driver = "overlay"
	want.Ipam[0].Gateway = "10.20.0.1"
	want.Ipam[1].Subnet, want.Ipam[1].Gateway = "fd00:20::/64", "fd00:20::1"
	if !proto.Equal(front.Spec, want) {
		t.Errorf("created spec\n%v\nwant\n%v", front.Spec, want)
	}
	if front.Vni != controlapi.MinVNI || front.Id == "" || front.GetMeta().GetVersion() == 0 {
		t.Errorf("created network: id %q, vni %d, meta %v; want an ID, VNI %d and committed meta", front.Id, front.Vni, front.Meta, controlapi.MinVNI)
	}

	back := e.createNetwork(t, networkSpec("back", "10.30.0.0/24"))
	for _, ref := range []string{front.Id, "front", "FRONT", front.Id[:6]} {
		resp, err := e.srv.GetNetwork(t.Context(), &api.GetNetworkRequest{NetworkId: ref})
		if err != nil {
			t.Fatalf("GetNetwork %s: %v", ref, err)
		}
		if !proto.Equal(resp.Network, front) {
			t.Errorf("GetNetwork %s = %v, want %v", ref, resp.Network, front)
		}
	}
	_, err := e.srv.GetNetwork(t.Context(), &api.GetNetworkRequest{NetworkId: "nosuch"})
	assertCode(t, err, codes.NotFound, "network nosuch: no such network")
	_, err = e.srv.GetNetwork(t.Context(), &api.GetNetworkRequest{})
	assertCode(t, err, codes.InvalidArgument, "network_id: must name a network")

	list, err := e.srv.ListNetworks(t.Context(), &api.ListNetworksRequest{})
	if err != nil {
		t.Fatalf("ListNetworks: %v", err)
	}
	if len(list.Networks) != 2 || list.Networks[0].Id != back.Id || list.Networks[1].Id != front.Id {
		t.Errorf("ListNetworks = %v, want back then front", list.Networks)
	}

	e.removeNetwork(t, "front")
	if _, err := e.srv.GetNetwork(t.Context(), &api.GetNetworkRequest{NetworkId: front.Id}); status.Code(err) != codes.NotFound {
		t.Errorf("GetNetwork of a removed network: %v, want NotFound", err)
	}
	_, err = e.srv.RemoveNetwork(t.Context(), &api.RemoveNetworkRequest{NetworkId: "front"})
	assertCode(t, err, codes.NotFound)
	if nws := e.networks(t); len(nws) != 1 || nws[0].Id != back.Id {
		t.Errorf("the store holds %v, want only back", nws)
	}
	// The name and the subnets are free again.
	e.createNetwork(t, networkSpec("front", "10.20.0.0/16"))
}

func TestNetworkVNIs(t *testing.T) {
	e := newTestEnv(t)
	vnis := func() []uint32 {
		var out []uint32
		for _, nw := range e.networks(t) {
			out = append(out, nw.Vni)
		}
		slices.Sort(out)
		return out
	}
	a := e.createNetwork(t, networkSpec("a", "10.1.0.0/24"))
	b := e.createNetwork(t, networkSpec("b", "10.2.0.0/24"))
	c := e.createNetwork(t, networkSpec("c", "10.3.0.0/24"))
	if a.Vni != 4096 || b.Vni != 4097 || c.Vni != 4098 {
		t.Fatalf("VNIs %d %d %d, want 4096 4097 4098", a.Vni, b.Vni, c.Vni)
	}
	e.removeNetwork(t, "b")
	e.removeNetwork(t, "a")
	if d := e.createNetwork(t, networkSpec("d", "10.4.0.0/24")); d.Vni != 4096 {
		t.Errorf("after removals, VNI %d, want the lowest free, 4096", d.Vni)
	}
	if f := e.createNetwork(t, networkSpec("f", "10.5.0.0/24")); f.Vni != 4097 {
		t.Errorf("VNI %d, want 4097", f.Vni)
	}
	if g := e.createNetwork(t, networkSpec("g", "10.6.0.0/24")); g.Vni != 4099 {
		t.Errorf("VNI %d, want 4099", g.Vni)
	}
	if got := vnis(); !slices.Equal(got, []uint32{4096, 4097, 4098, 4099}) {
		t.Errorf("VNIs %v", got)
	}
}

// The store refuses a network whose VNI another holds, or one outside the
// cluster's range, however it is written.
func TestStoreRefusesTakenOrBadVNIs(t *testing.T) {
	e := newTestEnv(t)
	front := e.createNetwork(t, networkSpec("front", "10.1.0.0/24"))
	before := e.snapshot(t)
	for _, vni := range []uint32{front.Vni, 0, controlapi.MinVNI - 1, controlapi.MaxVNI + 1} {
		err := e.store.Update(t.Context(), func(tx store.Tx) error {
			return tx.Create(&api.Network{Id: "other", Vni: vni, Spec: networkSpec("other", "10.2.0.0/24")})
		})
		if err == nil {
			t.Errorf("a network with VNI %d was written", vni)
		}
		e.assertUnchanged(t, before)
	}
}

func TestCreateNetworkRefusesConflicts(t *testing.T) {
	tests := []struct {
		name   string
		spec   *api.NetworkSpec
		code   codes.Code
		wanted []string
	}{
		{"a taken name", networkSpec("FRONT", "10.9.0.0/16"), codes.AlreadyExists, []string{`spec.annotations.name: a network named "front" already exists`}},
		{"a subnet inside another's", networkSpec("back", "10.9.0.0/16", "10.20.3.0/24"), codes.InvalidArgument,
			[]string{"spec.ipam[1].subnet: 10.20.3.0/24 of network back overlaps 10.20.0.0/16 of network front"}},
		{"a subnet around another's", networkSpec("back", "10.0.0.0/8"), codes.InvalidArgument,
			[]string{"spec.ipam[0].subnet: 10.0.0.0/8 of network back overlaps 10.20.0.0/16 of network front"}},
		{"an IPv6 subnet overlapping", networkSpec("back", "10.9.0.0/16", "fd00:20::/48"), codes.InvalidArgument,
			[]string{"spec.ipam[1].subnet: fd00:20::/48 of network back overlaps fd00:20::/64 of network front"}},
		{"a subnet next to another's", networkSpec("back", "10.21.0.0/16", "fd00:21::/64"), codes.OK, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			front := e.createNetwork(t, networkSpec("front", "10.20.0.0/16", "fd00:20::/64"))
			before := e.snapshot(t)
			_, err := e.srv.CreateNetwork(t.Context(), &api.CreateNetworkRequest{Spec: tc.spec})
			if tc.code == codes.OK {
				if err != nil {
					t.Fatalf("CreateNetwork: %v", err)
				}
				return
			}
			assertCode(t, err, tc.code, append(tc.wanted, front.Id)...)
			e.assertUnchanged(t, before)
		})
	}
}

// Two creates read the same state; the store commits what both may have
// and refuses the rest as the Control API would: a second network of one
// name or with an overlapping subnet is refused, and a second network that
// only read the same free VNI gets the next one.
func TestRacingNetworkCreates(t *testing.T) {
	tests := []struct {
		name   string
		a, b   *api.NetworkSpec
		code   codes.Code // OK: both must be created
		wanted []string   // the loser's message starts with one of these
	}{
		{"one name", networkSpec("front", "10.1.0.0/24"), networkSpec("Front", "10.2.0.0/24"), codes.AlreadyExists, []string{
			`spec.annotations.name: a network named "front" already exists`,
			`spec.annotations.name: a network named "Front" already exists`,
		}},
		{"overlapping subnets", networkSpec("front", "10.1.0.0/16"), networkSpec("back", "10.1.2.0/24"), codes.InvalidArgument, []string{
			"spec.ipam[0].subnet: 10.1.0.0/16 of network front overlaps 10.1.2.0/24 of network back",
			"spec.ipam[0].subnet: 10.1.2.0/24 of network back overlaps 10.1.0.0/16 of network front",
		}},
		{"only the VNI", networkSpec("front", "10.1.0.0/24"), networkSpec("back", "10.2.0.0/24"), codes.OK, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			p := holdProposals(e)
			errs := make(chan error, 2)
			for _, spec := range []*api.NetworkSpec{tc.a, tc.b} {
				go func() {
					_, err := e.srv.CreateNetwork(context.Background(), &api.CreateNetworkRequest{Spec: spec})
					errs <- err
				}()
			}
			p.release(2)
			if tc.code == codes.OK {
				p.release(1) // the loser of the VNI tries again
			}
			var refused []error
			for range 2 {
				if err := <-errs; err != nil {
					refused = append(refused, err)
				}
			}
			nws := e.networks(t)
			if tc.code == codes.OK {
				if len(refused) != 0 || len(nws) != 2 || nws[0].Vni == nws[1].Vni {
					t.Fatalf("refused %v; the store holds %v; want both, with distinct VNIs", refused, nws)
				}
				return
			}
			if len(refused) != 1 {
				t.Fatalf("%d of 2 racing creates refused (%v), want exactly 1", len(refused), refused)
			}
			st := status.Convert(refused[0])
			if st.Code() != tc.code || !slices.ContainsFunc(tc.wanted, func(m string) bool { return strings.HasPrefix(st.Message(), m) }) {
				t.Errorf("the loser got %v %q, want %v starting with one of %q", st.Code(), st.Message(), tc.code, tc.wanted)
			}
			if len(nws) != 1 {
				t.Errorf("the store holds %d networks, want 1", len(nws))
			}
		})
	}
}

func withNetworks(targets ...string) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) {
		s.Task.Networks = nil
		for _, t := range targets {
			s.Task.Networks = append(s.Task.Networks, &api.NetworkAttachmentConfig{Target: t, Aliases: []string{"x"}})
		}
	}
}

func TestServicesAttachToNetworks(t *testing.T) {
	e := newTestEnv(t)
	front := e.createNetwork(t, networkSpec("front", "10.20.0.0/16"))
	back := e.createNetwork(t, networkSpec("back", "10.30.0.0/16"))

	refused := []struct {
		name, field, reason string
		change              func(*api.ServiceSpec)
	}{
		{"an unknown network", "spec.task.networks[1]", `network "nosuch" not found`, withNetworks("front", "nosuch")},
		{"one network twice", "spec.task.networks[1]", "network front is attached already by spec.task.networks[0]", withNetworks("front", front.Id)},
		{"an empty target", "spec.task.networks[0].target", "required", withNetworks("")},
	}
	before := e.snapshot(t)
	for _, tc := range refused {
		spec := validSpec("web")
		tc.change(spec)
		_, err := e.srv.CreateService(t.Context(), &api.CreateServiceRequest{Spec: spec})
		assertCode(t, err, codes.InvalidArgument, tc.field+": ", tc.reason)
		e.assertUnchanged(t, before)
	}

	// Targets by name (in any case) and by ID prefix are stored as IDs.
	spec := validSpec("web")
	withNetworks("FRONT", back.Id[:5])(spec)
	web := e.create(t, spec)
	if got := e.service(t, web.Id).Spec.Task.Networks; got[0].Target != front.Id || got[1].Target != back.Id || got[0].Aliases[0] != "x" {
		t.Errorf("stored attachments %v, want targets %s and %s", got, front.Id, back.Id)
	}

	// Naming the same networks again, by name, is no change.
	again := validSpec("web")
	withNetworks("front", "back")(again)
	resp, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: again})
	if err != nil {
		t.Fatalf("UpdateService: %v", err)
	}
	if resp.Service.SpecVersion != web.SpecVersion || resp.Service.Meta.Version != web.Meta.Version {
		t.Errorf("an update naming the same networks by name moved the service: spec_version %d→%d", web.SpecVersion, resp.Service.SpecVersion)
	}

	// Detaching from back is a change, and so is attaching to an unknown one refused.
	bad := validSpec("web")
	withNetworks("front", "nosuch")(bad)
	_, err = e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: bad})
	assertCode(t, err, codes.InvalidArgument, `spec.task.networks[1]: network "nosuch" not found`)
	detach := validSpec("web")
	withNetworks("front")(detach)
	resp, err = e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: detach})
	if err != nil {
		t.Fatalf("UpdateService: %v", err)
	}
	if resp.Service.SpecVersion != web.SpecVersion+1 || len(resp.Service.Spec.Task.Networks) != 1 || resp.Service.Spec.Task.Networks[0].Target != front.Id {
		t.Errorf("after detaching: %v", resp.Service)
	}
}

func TestRemoveNetworkInUse(t *testing.T) {
	e := newTestEnv(t)
	front := e.createNetwork(t, networkSpec("front", "10.20.0.0/16"))
	e.createNetwork(t, networkSpec("back", "10.30.0.0/16"))
	spec := validSpec("web")
	withNetworks("front")(spec)
	web := e.create(t, spec)
	spec = validSpec("api")
	withNetworks("back", "front")(spec)
	apiSvc := e.create(t, spec)

	before := e.snapshot(t)
	_, err := e.srv.RemoveNetwork(t.Context(), &api.RemoveNetworkRequest{NetworkId: "front"})
	assertCode(t, err, codes.FailedPrecondition, "network front is in use by services api, web")
	e.assertUnchanged(t, before)

	// web leaves front; its previous spec still holds it, as a rollback
	// would attach it again.
	detached := validSpec("web")
	resp, err := e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: web.Meta.Version, Spec: detached})
	if err != nil {
		t.Fatalf("UpdateService: %v", err)
	}
	if _, err := e.srv.RemoveService(t.Context(), &api.RemoveServiceRequest{ServiceId: apiSvc.Id}); err != nil {
		t.Fatalf("RemoveService: %v", err)
	}
	_, err = e.srv.RemoveNetwork(t.Context(), &api.RemoveNetworkRequest{NetworkId: front.Id})
	assertCode(t, err, codes.FailedPrecondition, "network front is in use by the previous spec", "services web")

	// A task of the removed service still running on front holds it too.
	withNetworks(front.Id)(spec)
	task := &api.Task{Id: "t1", ServiceId: apiSvc.Id, ServiceName: "api", Slot: 1, Spec: spec.Task,
		DesiredState: api.TaskState_TASK_STATE_SHUTDOWN, Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_RUNNING}}
	if err := e.store.Update(t.Context(), func(tx store.Tx) error { return tx.Create(task) }); err != nil {
		t.Fatalf("create task: %v", err)
	}
	// A second update drops the previous spec's attachment.
	other := validSpec("web")
	other.Task.Container.Image = "other"
	_, err = e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: web.Id, ServiceVersion: resp.Service.Meta.Version, Spec: other})
	if err != nil {
		t.Fatalf("UpdateService: %v", err)
	}
	_, err = e.srv.RemoveNetwork(t.Context(), &api.RemoveNetworkRequest{NetworkId: front.Id})
	assertCode(t, err, codes.FailedPrecondition, "network front is in use by tasks still stopping of removed services api")

	err = e.store.Update(t.Context(), func(tx store.Tx) error {
		tk := tx.Task("t1")
		tk.Status.State = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(tk)
	})
	if err != nil {
		t.Fatalf("stop task: %v", err)
	}
	e.removeNetwork(t, front.Id)
}

// A service attaching to a network that a removal, which read the state
// before the service existed, deletes first is refused as it applies: the
// store never holds a service attached to a network that is not there.
func TestServiceCreateRacingNetworkRemoval(t *testing.T) {
	e := newTestEnv(t)
	e.createNetwork(t, networkSpec("front", "10.20.0.0/16"))
	p := holdProposals(e)
	removed := make(chan error, 1)
	go func() {
		_, err := e.srv.RemoveNetwork(context.Background(), &api.RemoveNetworkRequest{NetworkId: "front"})
		removed <- err
	}()
	remove := <-p.held
	created := make(chan error, 1)
	go func() {
		spec := validSpec("web")
		withNetworks("front")(spec)
		_, err := e.srv.CreateService(context.Background(), &api.CreateServiceRequest{Spec: spec})
		created <- err
	}()
	create := <-p.held
	for _, hp := range []heldProposal{remove, create} {
		p.index++
		hp.result <- e.store.Apply(p.index, hp.payload)
	}
	if err := <-removed; err != nil {
		t.Fatalf("RemoveNetwork: %v", err)
	}
	assertCode(t, <-created, codes.InvalidArgument, "spec.task.networks[0]: network", "not found")
	if svcs := e.services(t); len(svcs) != 0 {
		t.Errorf("the store holds %v", svcs)
	}
}

// The other order: a removal that read the state before a service attached
// commits after the attach, and the store refuses it as it applies, so no
// service is left attached to a network that is gone.
func TestNetworkRemovalRacingServiceCreate(t *testing.T) {
	e := newTestEnv(t)
	e.createNetwork(t, networkSpec("front", "10.20.0.0/16"))
	p := holdProposals(e)
	removed := make(chan error, 1)
	go func() {
		_, err := e.srv.RemoveNetwork(context.Background(), &api.RemoveNetworkRequest{NetworkId: "front"})
		removed <- err
	}()
	remove := <-p.held
	created := make(chan error, 1)
	go func() {
		spec := validSpec("web")
		withNetworks("front")(spec)
		_, err := e.srv.CreateService(context.Background(), &api.CreateServiceRequest{Spec: spec})
		created <- err
	}()
	create := <-p.held
	for _, hp := range []heldProposal{create, remove} {
		p.index++
		hp.result <- e.store.Apply(p.index, hp.payload)
	}
	if err := <-created; err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	assertCode(t, <-removed, codes.FailedPrecondition, "network front is in use by", "web")
	if svcs := e.services(t); len(svcs) != 1 {
		t.Errorf("the store holds %v", svcs)
	}
	var nws []*api.Network
	e.store.View(func(tx store.ReadTx) { nws = tx.Networks() })
	if len(nws) != 1 {
		t.Errorf("the network was removed under the service: %v", nws)
	}
}

// Bindings left on a network after their services were removed (their
// tasks still stopping) keep it, in the Control API's transaction and in
// the store's check as the delete applies; a binding on another network
// does not.
func TestRemoveNetworkWithBindingsLeft(t *testing.T) {
	e := newTestEnv(t)
	front := e.createNetwork(t, networkSpec("front", "10.20.0.0/16"))
	back := e.createNetwork(t, networkSpec("back", "10.30.0.0/16"))
	gone := func(name string) *api.Service { return &api.Service{Id: "svc" + name, Spec: validSpec(name)} }
	web, apiSvc := gone("web"), gone("api")
	e.addBindings(t,
		slotBinding("bweb1", web, front, 1, "10.20.0.5/16"),
		slotBinding("bapi1", apiSvc, front, 1, "10.20.0.6/16"),
		slotBinding("bapi2", apiSvc, front, 2, "10.20.0.7/16"),
		slotBinding("bapiback", apiSvc, back, 1, "10.30.0.6/16"),
	)
	deleteBindings := func(ids ...string) {
		t.Helper()
		err := e.store.Update(t.Context(), func(tx store.Tx) error {
			for _, id := range ids {
				if err := tx.Delete(tx.Binding(id)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("delete bindings: %v", err)
		}
	}
	removeDirectly := func() error {
		return e.store.Update(t.Context(), func(tx store.Tx) error { return tx.Delete(tx.Network(front.Id)) })
	}

	tests := []struct {
		freed []string
		want  string
	}{
		{nil, "network front: 3 addresses are still bound, by services api, web; they are freed once the tasks that held them stopped"},
		{[]string{"bapi1", "bapi2"}, "network front: 1 address is still bound, by services web"},
	}
	for _, tc := range tests {
		deleteBindings(tc.freed...)
		before := e.snapshot(t)
		_, err := e.srv.RemoveNetwork(t.Context(), &api.RemoveNetworkRequest{NetworkId: "front"})
		assertCode(t, err, codes.FailedPrecondition, tc.want)
		assertCode(t, removeDirectly(), codes.FailedPrecondition, tc.want)
		e.assertUnchanged(t, before)
	}
	deleteBindings("bweb1")
	e.removeNetwork(t, "front")
}
