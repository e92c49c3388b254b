package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
)

func TestParseSlotPin(t *testing.T) {
	tests := []struct {
		in       string
		withAddr bool
		network  string
		slot     uint64
		addr     string
		wantErr  string
	}{
		{in: "3=10.20.0.13", withAddr: true, slot: 3, addr: "10.20.0.13"},
		{in: "front:3=10.20.0.13", withAddr: true, network: "front", slot: 3, addr: "10.20.0.13"},
		{in: "back:12=FD00:30:0::5", withAddr: true, network: "back", slot: 12, addr: "fd00:30::5"},
		{in: "front:3", network: "front", slot: 3},
		{in: "7", slot: 7},
		{in: "3", withAddr: true, wantErr: "want [NETWORK:]SLOT=ADDR"},
		{in: "3=10.0.0.1", wantErr: "want [NETWORK:]SLOT"},
		{in: ":3=10.0.0.1", withAddr: true, wantErr: "empty NETWORK before the colon"},
		{in: "0=10.0.0.1", withAddr: true, wantErr: `slot "0": want a slot number, counting from 1`},
		{in: "front:web.3=10.0.0.1", withAddr: true, wantErr: `slot "web.3": want a slot number`},
		{in: "-1", wantErr: `slot "-1": want a slot number`},
		{in: "3=10.20.0.13/24", withAddr: true, wantErr: `address "10.20.0.13/24": give the address without a prefix length`},
		{in: "3=", withAddr: true, wantErr: `address "": want an IP address`},
		{in: "3=fe80::1%eth0", withAddr: true, wantErr: "an address in a network has no zone"},
		{in: "3=::ffff:10.0.0.1", withAddr: true, wantErr: "write an IPv4 address in IPv4 form"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			pin, err := parseSlotPin(tt.in, tt.withAddr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSlotPin(%q) error %v, want one with %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSlotPin(%q): %v", tt.in, err)
			}
			addr := ""
			if pin.addr.IsValid() {
				addr = pin.addr.String()
			}
			if pin.network != tt.network || pin.slot != tt.slot || addr != tt.addr {
				t.Errorf("parseSlotPin(%q) = %q, %d, %q; want %q, %d, %q", tt.in, pin.network, pin.slot, addr, tt.network, tt.slot, tt.addr)
			}
		})
	}
}

func TestParseRangePin(t *testing.T) {
	tests := []struct {
		in, network, r, wantErr string
	}{
		{in: "10.20.1.0/28", r: "10.20.1.0/28"},
		{in: "10.20.0.10-10.20.0.20", r: "10.20.0.10-10.20.0.20"},
		{in: "front:10.20.1.0/28", network: "front", r: "10.20.1.0/28"},
		{in: "front:10.20.0.10-10.20.0.20", network: "front", r: "10.20.0.10-10.20.0.20"},
		// IPv6 ranges are full of colons: a value that parses whole has no NETWORK.
		{in: "fd00:30::/120", r: "fd00:30::/120"},
		{in: "fd00:30::10-fd00:30::20", r: "fd00:30::10-fd00:30::20"},
		{in: "back:fd00:30::10-fd00:30::20", network: "back", r: "fd00:30::10-fd00:30::20"},
		{in: "back:FD00:30::/120", network: "back", r: "fd00:30::/120"},
		// Clearing, on update.
		{in: "front:", network: "front"},
		{in: ""},
		{in: "10.20.0.5/24", wantErr: "host bits are set; did you mean 10.20.0.0/24?"},
		{in: "front:10.20.0.9-10.20.0.1", wantErr: "the first address comes after the last"},
		{in: "10.20.0.1-fd00::1", wantErr: "both ends must be IPv4, or both IPv6"},
		{in: "front", wantErr: "want a CIDR like 10.20.128.0/17 or a range FIRST-LAST"},
		{in: ":10.20.1.0/28", wantErr: "want a CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			rp, err := parseRangePin(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseRangePin(%q) error %v, want one with %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || rp.network != tt.network || rp.r != tt.r {
				t.Errorf("parseRangePin(%q) = %q, %q, %v; want %q, %q", tt.in, rp.network, rp.r, err, tt.network, tt.r)
			}
		})
	}
}

func TestServiceCreatePins(t *testing.T) {
	fixNameSuffix(t)
	tests := []struct {
		name string
		args []string
		want func(s *api.ServiceSpec)
	}{
		{
			name: "one network: NETWORK left out",
			args: []string{"--network", "front", "--ip", "1=10.20.0.5", "--ip", "2=10.20.0.6",
				"--ip-range", "10.20.1.0/28", "--ip-hold", "10m", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "front",
					Ips: map[uint64]string{1: "10.20.0.5", 2: "10.20.0.6"}, IpRange: "10.20.1.0/28"}}
				s.IpHold = durationpb.New(10 * time.Minute)
			},
		},
		{
			name: "two networks, IPv6, canonical addresses",
			args: []string{"--network", "front", "--network", "name=back,alias=db", "--ip", "back:3=FD00:30:0::5",
				"--ip-range", "back:fd00:30::10-fd00:30::20", "--ip", "front:1=10.20.0.5", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Task.Networks = []*api.NetworkAttachmentConfig{
					{Target: "front", Ips: map[uint64]string{1: "10.20.0.5"}},
					{Target: "back", Aliases: []string{"db"}, Ips: map[uint64]string{3: "fd00:30::5"},
						IpRange: "fd00:30::10-fd00:30::20"},
				}
			},
		},
		{
			name: "a later pin of a slot wins",
			args: []string{"--network", "front", "--ip", "1=10.20.0.5", "--ip", "front:1=10.20.0.9", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "front", Ips: map[uint64]string{1: "10.20.0.9"}}}
			},
		},
		{
			name: "ip-hold 0 keeps until removal: unset",
			args: []string{"--ip-hold", "0s", "nginx"},
			want: func(*api.ServiceSpec) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append([]string{"service", "create", "--detach"}, tt.args...)...)
			res.Check(t, 0, idNewService+"\n", "")
			want := baseSpec("nginx")
			tt.want(want)
			checkRequests(t, f, "CreateService", &f.serviceCreates, []*api.CreateServiceRequest{{Spec: want}})
			if calls := f.callNames(); !slices.Equal(calls, []string{"CreateService"}) {
				t.Errorf("RPCs %v, want only CreateService: networks named as attached need no lookup", calls)
			}
		})
	}
}

// A NETWORK written otherwise than its --network (an ID prefix for a
// name) is looked up.
func TestServiceCreatePinResolvesNetwork(t *testing.T) {
	fixNameSuffix(t)
	f := newFakeNetworks()
	res := shoalctl(t, serve(t, f), "service", "create", "-d", "--network", "front", "--network", idBack,
		"--ip", "frontnet:4=10.20.0.44", "--ip", "back:4=10.30.0.44", "nginx")
	res.Check(t, 0, idNewService+"\n", "")
	want := baseSpec("nginx")
	want.Task.Networks = []*api.NetworkAttachmentConfig{
		{Target: "front", Ips: map[uint64]string{4: "10.20.0.44"}},
		{Target: idBack, Ips: map[uint64]string{4: "10.30.0.44"}},
	}
	checkRequests(t, f, "CreateService", &f.serviceCreates, []*api.CreateServiceRequest{{Spec: want}})
}

func TestServiceCreatePinErrors(t *testing.T) {
	tests := []struct {
		args    []string
		want    string
		wantRPC bool
	}{
		{args: []string{"--ip", "1=10.20.0.5"},
			want: `invalid --ip "1=10.20.0.5": the service has no network: attach it to one with --network`},
		{args: []string{"--network", "front", "--network", "back", "--ip", "1=10.20.0.5"},
			want: `invalid --ip "1=10.20.0.5": the service has 2 networks (front, back): say which, with a NETWORK: prefix`},
		{args: []string{"--network", "front", "--ip", "0=10.20.0.5"},
			want: `invalid --ip "0=10.20.0.5": slot "0": want a slot number, counting from 1`},
		{args: []string{"--network", "front", "--ip", "1=10.20.0.5/16"},
			want: `invalid --ip "1=10.20.0.5/16": address "10.20.0.5/16": give the address without a prefix length`},
		{args: []string{"--network", "front", "--ip", "1:10.20.0.5"},
			want: `invalid --ip "1:10.20.0.5": want [NETWORK:]SLOT=ADDR, e.g. 3=10.20.0.13 or front:3=10.20.0.13`},
		{args: []string{"--network", "front", "--ip-range", "front:"},
			want: `invalid --ip-range "front:": want CIDR or FIRST-LAST: an empty range removes one on update only`},
		{args: []string{"--network", "front", "--ip-range", "10.20.0.9-10.20.0.1"},
			want: `invalid --ip-range "10.20.0.9-10.20.0.1": the first address comes after the last`},
		{args: []string{"--ip-hold", "10"}, want: `invalid --ip-hold "10": want a duration like 10s or 1m30s`},
		{args: []string{"--ip-hold", "-1m"}, want: `invalid --ip-hold "-1m": must not be negative`},
		{args: []string{"--mode", "global", "--network", "front", "--ip-range", "10.20.1.0/28"},
			want: `invalid --ip-range "10.20.1.0/28": a global service's tasks have no slots: pins apply to replicated services`},
		{args: []string{"--network", "front", "--ip", "back:1=10.30.0.5"}, wantRPC: true,
			want: `invalid --ip "back:1=10.30.0.5": get network back: network "back" not found`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append(append([]string{"service", "create"}, tt.args...), "nginx")...)
			res.Check(t, 1, "", "Error: "+tt.want+"\n")
			calls := f.callNames()
			if slices.Contains(calls, "CreateService") || tt.wantRPC != (len(calls) > 0) {
				t.Errorf("RPCs made: %v", calls)
			}
		})
	}
}

// webWithNetworks is the web fixture attached, as the manager stores it, by
// ID to front (slot 1 pinned) and back (a range).
func webWithNetworks(s *api.ServiceSpec) {
	s.Task.Networks = []*api.NetworkAttachmentConfig{
		{Target: idFront, Ips: map[uint64]string{1: "10.20.0.5"}},
		{Target: idBack, IpRange: "10.30.0.16/28"},
	}
}

func newFakeServicesOnNetworks() *fakeControl {
	f := newFakeServices()
	f.networks = []*api.Network{frontNetwork(), backNetwork()}
	webWithNetworks(f.services[0].Spec)
	return f
}

func TestServiceUpdatePins(t *testing.T) {
	update := func(edit func(s *api.ServiceSpec)) []*api.UpdateServiceRequest {
		return []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20, Spec: webSpecWith(func(s *api.ServiceSpec) {
			webWithNetworks(s)
			edit(s)
		})}}
	}
	tests := []struct {
		name string
		args []string
		want []*api.UpdateServiceRequest
	}{
		{
			name: "add a pin and change one, networks by name",
			args: []string{"--ip", "front:2=10.20.0.6", "--ip", "front:1=10.20.0.50", "--ip", "back:1=10.30.0.9", "web"},
			want: update(func(s *api.ServiceSpec) {
				s.Task.Networks[0].Ips = map[uint64]string{1: "10.20.0.50", 2: "10.20.0.6"}
				s.Task.Networks[1].Ips = map[uint64]string{1: "10.30.0.9"}
			}),
		},
		{
			name: "remove the last pin; a later --ip-range replaces the range",
			args: []string{"--ip-rm", "front:1", "--ip-range", "back:10.30.0.32/28", "web"},
			want: update(func(s *api.ServiceSpec) {
				s.Task.Networks[0].Ips = nil
				s.Task.Networks[1].IpRange = "10.30.0.32/28"
			}),
		},
		{
			name: "clear a range, by network ID prefix",
			args: []string{"--ip-range", "backnet:", "web"},
			want: update(func(s *api.ServiceSpec) { s.Task.Networks[1].IpRange = "" }),
		},
		{
			name: "ip-hold",
			args: []string{"--ip-hold", "1h", "web"},
			want: update(func(s *api.ServiceSpec) { s.IpHold = durationpb.New(time.Hour) }),
		},
		{
			name: "removing a pin that is not there changes nothing",
			args: []string{"--ip-rm", "back:4", "web"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServicesOnNetworks()
			res := shoalctl(t, serve(t, f), append([]string{"service", "update", "-d"}, tt.args...)...)
			res.Check(t, 0, "web\n", "")
			checkRequests(t, f, "UpdateService", &f.serviceUpdates, tt.want)
		})
	}
}

func TestServiceUpdatePinErrors(t *testing.T) {
	tests := []struct {
		name, args, want string
		wantRPCs         bool
	}{
		{name: "rollback with a pin", args: "--rollback --ip-rm 1 web",
			want: "--rollback returns to the previous spec and can't be combined with --ip-rm"},
		{name: "a bad --ip-rm before any RPC", args: "--ip-rm front:1=10.20.0.5 web",
			want: `invalid --ip-rm "front:1=10.20.0.5": want [NETWORK:]SLOT`},
		{name: "which network", args: "--ip 3=10.20.0.7 web", wantRPCs: true,
			want: `invalid --ip "3=10.20.0.7": the service has 2 networks (` + idFront + ", " + idBack + `): say which, with a NETWORK: prefix`},
		{name: "a network the service is not on", args: "--ip-range other:10.40.0.0/28 web", wantRPCs: true,
			want: `invalid --ip-range "other:10.40.0.0/28": get network other: network "other" not found`},
		{name: "a pin of a global service", args: "--ip 1=10.20.0.5 api", wantRPCs: true,
			want: `invalid --ip "1=10.20.0.5": a global service's tasks have no slots: pins apply to replicated services`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServicesOnNetworks()
			f.services[1].Spec.Task.Networks = []*api.NetworkAttachmentConfig{{Target: idFront}}
			res := shoalctl(t, serve(t, f), append([]string{"service", "update", "-d"}, strings.Fields(tt.args)...)...)
			res.Check(t, 1, "", "Error: "+tt.want+"\n")
			if calls := f.callNames(); tt.wantRPCs == (len(calls) == 0) || slices.Contains(calls, "UpdateService") {
				t.Errorf("RPCs made: %v", calls)
			}
		})
	}
}

func TestServicePsAddresses(t *testing.T) {
	fixClock(t)
	f := newFakeServicesOnNetworks()
	for _, task := range f.tasks {
		switch task.GetId() {
		case "webtask1new00000000000001":
			task.Networks = []*api.NetworkAttachment{
				{NetworkId: idFront, Address: "10.20.0.5/16"},
				{NetworkId: idBack, Address: "10.30.0.16/24"},
			}
		case "webtask2new00000000000002":
			task.Networks = []*api.NetworkAttachment{{NetworkId: "gonenet00000000000000007", Address: "10.40.0.2/24"}}
		case "webtask3new00000000000003":
			task.Status.State = api.TaskState_TASK_STATE_NEW
			task.Status.Message = "waiting for webtask1old0 to stop: slot 3's address moves only once it has"
		}
	}
	res := shoalctl(t, serve(t, f), "service", "ps", "-f", "desired-state=running", "web")
	want := `ID             NAME    IMAGE        NODE     ADDRESSES                          DESIRED STATE   CURRENT STATE            ERROR                                                                         PORTS
webtask1new0   web.1   nginx:1.27   node-1   front=10.20.0.5, back=10.30.0.16   Running         Running 5 seconds ago
webtask2new0   web.2   nginx:1.27   mgr-1    gonenet00000=10.40.0.2             Running         Running 50 seconds ago
webtask3new0   web.3   nginx:1.27                                               Running         New 3 seconds ago        "waiting for webtask1old0 to stop: slot 3's address moves only once it has"
`
	res.Check(t, 0, want, "")
	if calls := f.callNames(); !slices.Contains(calls, "ListNetworks") {
		t.Errorf("RPCs %v: network names not looked up", calls)
	}
}

func TestServiceInspectPrettyNetworks(t *testing.T) {
	f := newFakeServicesOnNetworks()
	f.services[0].Spec.Task.Networks[0].Aliases = []string{"www"}
	f.services[0].Spec.IpHold = durationpb.New(10 * time.Minute)
	held := timestamppb.New(fixedTime)
	f.bindings = []*api.IPBinding{
		{Id: "b3", ServiceId: idWeb, NetworkId: idFront, Kind: api.IPBinding_KIND_SLOT, Slot: 2, Address: "10.20.128.3/16"},
		{Id: "b1", ServiceId: idWeb, NetworkId: idFront, Kind: api.IPBinding_KIND_SLOT, Slot: 1, Address: "10.20.0.5/16", Pinned: true},
		{Id: "bv", ServiceId: idWeb, NetworkId: idFront, Kind: api.IPBinding_KIND_VIP, Address: "10.20.128.1/16"},
		{Id: "b4", ServiceId: idWeb, NetworkId: idBack, Kind: api.IPBinding_KIND_SLOT, Slot: 4, Address: "10.30.0.19/24",
			Pinned: true, HeldSince: held, ReleaseRequested: true},
		{Id: "bo", ServiceId: idWeb, NetworkId: "oldnet", Kind: api.IPBinding_KIND_SLOT, Slot: 1, Address: "10.50.0.2/24", HeldSince: held},
		{Id: "ba", ServiceId: idAPI, NetworkId: idFront, Kind: api.IPBinding_KIND_NODE, NodeId: idWorkerA, Address: "10.20.128.9/16"},
	}
	res := shoalctl(t, serve(t, f), "service", "inspect", "--pretty", "web")
	if res.Code != 0 {
		t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
	}
	checkHasLines(t, res.Stdout, []string{
		"Networks:",
		"front:",
		"ID: " + idFront,
		"Aliases: www",
		"Pins: 1=10.20.0.5",
		"VIP: 10.20.128.1/16",
		"Slot 1: 10.20.0.5/16 (pinned)",
		"Slot 2: 10.20.128.3/16 (bound)",
		"back:",
		"IP range: 10.30.0.16/28",
		"Slot 4: 10.30.0.19/24 (held, releasing)",
		"oldnet (detached):",
		"Slot 1: 10.50.0.2/24 (held)",
		"IP hold: 10m0s",
	})
	if strings.Contains(res.Stdout, "10.20.128.9") {
		t.Errorf("another service's binding shown:\n%s", res.Stdout)
	}
	// VIP, then slots in order.
	if vip, s1, s2 := strings.Index(res.Stdout, "VIP:"), strings.Index(res.Stdout, "Slot 1:"), strings.Index(res.Stdout, "Slot 2:"); !(vip < s1 && s1 < s2) {
		t.Errorf("bindings out of order:\n%s", res.Stdout)
	}

	// The JSON form is the service as stored, nothing added.
	res = shoalctl(t, serve(t, f), "service", "inspect", "web")
	if res.Code != 0 || strings.Contains(res.Stdout, "10.20.128.1") {
		t.Errorf("exit %d, JSON with bindings:\n%s", res.Code, res.Stdout)
	}

	// A global service's bindings are by node, by hostname.
	f.services[1].Spec.Task.Networks = []*api.NetworkAttachmentConfig{{Target: idFront}}
	res = shoalctl(t, serve(t, f), "service", "inspect", "--pretty", "api")
	checkHasLines(t, res.Stdout, []string{"Node node-1: 10.20.128.9/16 (bound)", "IP hold: until the service is removed"})
}

func TestServiceInspectPrettyWithoutNetworksAsksNothingMore(t *testing.T) {
	f := newFakeServices()
	res := shoalctl(t, serve(t, f), "service", "inspect", "--pretty", "web")
	if res.Code != 0 || strings.Contains(res.Stdout, "Networks") {
		t.Errorf("exit %d, stdout\n%s", res.Code, res.Stdout)
	}
	if calls := f.callNames(); !slices.Equal(calls, []string{"GetService"}) {
		t.Errorf("RPCs %v, want only GetService", calls)
	}
}
