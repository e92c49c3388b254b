package mesh

import (
	"errors"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// appliedState is what the Index of these tests starts from: two services' VIPs, an ingress and
// a host port, and SNAT.
func appliedState() State {
	return State{
		VIPs: []VIP{
			{Service: "svc1", Name: "web", Network: "nw1", Addr: addr("10.20.0.2"),
				Backends: []netip.Addr{addr("10.20.0.5"), addr("10.20.0.6")}},
			{Service: "svc2", Name: "db", Network: "nw1", Addr: addr("10.20.1.2"),
				Backends: []netip.Addr{addr("10.20.1.5")}},
		},
		Ports: []Port{
			{Service: "svc1", Name: "web", Protocol: TCP, Published: 8080, Mode: Ingress,
				Backends: []Backend{{Addr: addr("10.20.0.5"), Port: 80}}},
			{Service: "svc2", Name: "db", Protocol: UDP, Published: 53, Mode: Host},
		},
		SNAT: addr("10.20.0.254"),
	}
}

// sorted is s in the order Index.State returns.
func sorted(s State) State {
	out := State{SNAT: s.SNAT}
	for _, v := range s.VIPs {
		v.Backends = slices.Clone(v.Backends)
		slices.SortFunc(v.Backends, netip.Addr.Compare)
		out.VIPs = append(out.VIPs, v)
	}
	slices.SortFunc(out.VIPs, func(a, b VIP) int { return a.Addr.Compare(b.Addr) })
	for _, p := range s.Ports {
		p.Backends = slices.Clone(p.Backends)
		slices.SortFunc(p.Backends, compareBackends)
		out.Ports = append(out.Ports, p)
	}
	slices.SortFunc(out.Ports, func(a, b Port) int { return comparePortKeys(a.PortKey(), b.PortKey()) })
	return out
}

// requireIndexOf fails the test unless x holds exactly s, backend counts included.
func requireIndexOf(t *testing.T, x *Index, s State) {
	t.Helper()
	if got, want := x.State(), sorted(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("State:\n got  %+v\n want %+v", got, want)
	}
	if got, want := x.backends, NewIndex(s).backends; !maps.Equal(got, want) {
		t.Fatalf("backend counts %v, want %v", got, want)
	}
}

func TestIndexStateRoundTrips(t *testing.T) {
	for name, s := range map[string]State{"applied": appliedState(), "valid": validState(), "empty": {}} {
		x := NewIndex(s)
		if got, want := x.State(), sorted(s); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: State:\n got  %+v\n want %+v", name, got, want)
		}
	}
}

func TestIndexCheckRefusesBadUpdates(t *testing.T) {
	web := func(a string, backends ...string) VIP {
		v := VIP{Service: "svc3", Name: "api", Network: "nw1", Addr: addr(a)}
		for _, b := range backends {
			v.Backends = append(v.Backends, addr(b))
		}
		return v
	}
	port := func(proto Protocol, published uint16, mode PublishMode) Port {
		return Port{Service: "svc3", Name: "api", Protocol: proto, Published: published, Mode: mode,
			Backends: []Backend{{Addr: addr("10.20.2.5"), Port: 80}}}
	}
	cases := []struct {
		name   string
		state  func(*State) // changes the applied State first; nil keeps it
		update Update
		field  string
		reason string
	}{
		// Each object on its own, as State.Validate checks it.
		{"VIP missing", nil, Update{VIPs: []VIP{{Service: "svc3"}}}, "VIPs[0].Addr", "missing"},
		{"VIP IPv6", nil, Update{VIPs: []VIP{web("fd00::1")}}, "VIPs[0].Addr", "not IPv4"},
		{"backend loopback", nil, Update{VIPs: []VIP{web("10.20.2.2", "10.20.2.5", "127.0.0.1")}},
			"VIPs[0].Backends[1]", "loopback"},
		{"backend twice", nil, Update{VIPs: []VIP{web("10.20.2.2", "10.20.2.5", "10.20.2.5")}},
			"VIPs[0].Backends[1]", "also Backends[0]"},
		{"no service", nil, Update{VIPs: []VIP{{Addr: addr("10.20.2.2")}}}, "VIPs[0].Service", "empty"},
		{"label with space", nil, Update{Ports: []Port{{Service: "svc3", Name: "a b", Protocol: TCP, Published: 1, Mode: Host}}},
			"Ports[0].Name", "space"},
		{"port 0", nil, Update{Ports: []Port{port(TCP, 0, Host)}}, "Ports[0].Published", "port 0"},
		{"bad protocol", nil, Update{Ports: []Port{port(0, 80, Host)}}, "Ports[0].Protocol", "not tcp or udp"},
		{"bad mode", nil, Update{Ports: []Port{port(TCP, 80, 0)}}, "Ports[0].Mode", "not ingress or host"},
		{"backend port 0", nil, Update{Ports: []Port{{Service: "s", Protocol: TCP, Published: 1, Mode: Host,
			Backends: []Backend{{Addr: addr("10.20.2.5")}}}}}, "Ports[0].Backends[0].Port", "port 0"},
		// Keys twice within the Update.
		{"VIP twice", nil, Update{VIPs: []VIP{web("10.20.2.2"), web("10.20.2.3"), web("10.20.2.2")}},
			"VIPs[2].Addr", "10.20.2.2 is also VIPs[0]"},
		{"port twice", nil, Update{Ports: []Port{port(TCP, 80, Host), port(TCP, 80, Host)}},
			"Ports[1]", "tcp/80 is also published by Ports[0]"},
		{"VIP removed twice", nil, Update{RemovedVIPs: []netip.Addr{addr("10.20.0.2"), addr("10.20.0.2")}},
			"RemovedVIPs[1]", "also RemovedVIPs[0]"},
		{"port removed twice", nil, Update{RemovedPorts: []PortKey{{TCP, 8080}, {UDP, 8080}, {TCP, 8080}}},
			"RemovedPorts[2]", "tcp/8080 is also RemovedPorts[0]"},
		// Removed keys that no State can hold.
		{"removed VIP missing", nil, Update{RemovedVIPs: []netip.Addr{{}}}, "RemovedVIPs[0]", "missing"},
		{"removed VIP IPv6", nil, Update{RemovedVIPs: []netip.Addr{addr("fd00::2")}}, "RemovedVIPs[0]", "not IPv4"},
		{"removed port protocol", nil, Update{RemovedPorts: []PortKey{{Published: 80}}},
			"RemovedPorts[0].Protocol", "not tcp or udp"},
		{"removed port 0", nil, Update{RemovedPorts: []PortKey{{Protocol: UDP}}}, "RemovedPorts[0].Published", "port 0"},
		// Another service's VIP or port, kept by the Update.
		{"VIP of another service", nil, Update{VIPs: []VIP{web("10.20.0.2")}},
			"VIPs[0].Addr", "10.20.0.2 is the VIP of service svc1 (web); remove it in the same Update"},
		{"VIP of another service, another removed", nil,
			Update{VIPs: []VIP{web("10.20.0.2")}, RemovedVIPs: []netip.Addr{addr("10.20.1.2")}},
			"VIPs[0].Addr", "VIP of service svc1 (web)"},
		{"port of another service", nil, Update{Ports: []Port{port(TCP, 8080, Host)}},
			"Ports[0]", "tcp/8080 is published by service svc1 (web); remove it in the same Update"},
		{"port of another service, other protocol removed", nil,
			Update{Ports: []Port{port(UDP, 53, Host)}, RemovedPorts: []PortKey{{TCP, 53}}},
			"Ports[0]", "udp/53 is published by service svc2 (db)"},
		// VIPs and backends overlap, across the applied State and the Update.
		{"backend is an applied VIP", nil, Update{VIPs: []VIP{web("10.20.2.2", "10.20.2.5", "10.20.1.2")}},
			"VIPs[0].Backends[1]", "10.20.1.2 is the VIP of service svc2 (db)"},
		{"backend is a VIP of the Update", nil, Update{VIPs: []VIP{web("10.20.2.2", "10.20.2.3"), web("10.20.2.3")}},
			"VIPs[0].Backends[0]", "10.20.2.3 is the VIP of VIPs[1]"},
		{"backend is a replaced VIP", nil,
			Update{VIPs: []VIP{web("10.20.2.2", "10.20.0.2"), {Service: "svc1", Addr: addr("10.20.0.2")}}},
			"VIPs[0].Backends[0]", "10.20.0.2 is the VIP of VIPs[1]"},
		{"VIP is an applied backend", nil, Update{VIPs: []VIP{web("10.20.0.6")}},
			"VIPs[0].Addr", "10.20.0.6 is a backend of the VIP 10.20.0.2 of service svc1 (web)"},
		{"a replaced VIP's new backend is a VIP of the Update", nil,
			Update{VIPs: []VIP{{Service: "svc1", Name: "web", Addr: addr("10.20.0.2"), Backends: []netip.Addr{addr("10.20.0.5")}},
				{Service: "svc2", Addr: addr("10.20.1.2"), Backends: []netip.Addr{addr("10.20.0.7")}}, web("10.20.0.7")}},
			"VIPs[1].Backends[0]", "10.20.0.7 is the VIP of VIPs[2]"},
		{"VIP is a backend of two, one removed", func(s *State) {
			s.VIPs[1].Backends = append(s.VIPs[1].Backends, addr("10.20.0.5"))
		}, Update{VIPs: []VIP{web("10.20.0.5")}, RemovedVIPs: []netip.Addr{addr("10.20.0.2")}},
			"VIPs[0].Addr", "10.20.0.5 is a backend of the VIP 10.20.1.2 of service svc2 (db)"},
		// SNAT.
		{"ingress without SNAT", func(s *State) { s.SNAT, s.Ports = netip.Addr{}, s.Ports[1:] },
			Update{Ports: []Port{port(TCP, 80, Host), port(TCP, 81, Ingress)}},
			"Ports[1].Mode", "ingress needs the State's SNAT address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := appliedState()
			if c.state != nil {
				c.state(&s)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("the applied State of the case is invalid: %v", err)
			}
			x := NewIndex(s)
			err := x.Check(c.update)
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Check = %v, want a *FieldError", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Reason, c.reason) {
				t.Errorf("Check = %q, want field %s and a reason with %q", err, c.field, c.reason)
			}
			requireIndexOf(t, x, s)
		})
	}
}

func TestIndexAppliesAcceptedUpdates(t *testing.T) {
	cases := []struct {
		name   string
		update Update
		want   func(*State)
	}{
		{"nothing", Update{}, func(*State) {}},
		{"absent keys removed", Update{RemovedVIPs: []netip.Addr{addr("10.99.0.1")}, RemovedPorts: []PortKey{{TCP, 1}, {UDP, 8080}}},
			func(*State) {}},
		{"backends replaced", Update{VIPs: []VIP{{Service: "svc1", Name: "web", Network: "nw1", Addr: addr("10.20.0.2"),
			Backends: []netip.Addr{addr("10.20.0.7"), addr("10.20.0.5")}}}},
			func(s *State) { s.VIPs[0].Backends = []netip.Addr{addr("10.20.0.5"), addr("10.20.0.7")} }},
		{"VIP and port added", Update{
			VIPs:  []VIP{{Service: "svc3", Addr: addr("10.20.2.2"), Backends: []netip.Addr{addr("10.20.2.5")}}},
			Ports: []Port{{Service: "svc3", Protocol: TCP, Published: 443, Mode: Ingress, Backends: []Backend{{Addr: addr("10.20.2.5"), Port: 443}}}}},
			func(s *State) {
				s.VIPs = append(s.VIPs, VIP{Service: "svc3", Addr: addr("10.20.2.2"), Backends: []netip.Addr{addr("10.20.2.5")}})
				s.Ports = append(s.Ports, Port{Service: "svc3", Protocol: TCP, Published: 443, Mode: Ingress,
					Backends: []Backend{{Addr: addr("10.20.2.5"), Port: 443}}})
			}},
		{"VIP and port removed", Update{RemovedVIPs: []netip.Addr{addr("10.20.1.2")}, RemovedPorts: []PortKey{{TCP, 8080}}},
			func(s *State) { s.VIPs, s.Ports = s.VIPs[:1], s.Ports[1:] }},
		{"VIP and port moved to another service", Update{
			RemovedVIPs: []netip.Addr{addr("10.20.0.2")}, VIPs: []VIP{{Service: "svc3", Addr: addr("10.20.0.2")}},
			RemovedPorts: []PortKey{{UDP, 53}}, Ports: []Port{{Service: "svc3", Protocol: UDP, Published: 53, Mode: Ingress}}},
			func(s *State) {
				s.VIPs[0] = VIP{Service: "svc3", Addr: addr("10.20.0.2")}
				s.Ports[1] = Port{Service: "svc3", Protocol: UDP, Published: 53, Mode: Ingress}
			}},
		{"a removed VIP's backend becomes a VIP", Update{RemovedVIPs: []netip.Addr{addr("10.20.0.2")},
			VIPs: []VIP{{Service: "svc3", Addr: addr("10.20.0.5")}}},
			func(s *State) { s.VIPs[0] = VIP{Service: "svc3", Addr: addr("10.20.0.5")} }},
		{"a replaced VIP's backend becomes a VIP", Update{VIPs: []VIP{
			{Service: "svc3", Addr: addr("10.20.0.6")},
			{Service: "svc1", Name: "web", Network: "nw1", Addr: addr("10.20.0.2"), Backends: []netip.Addr{addr("10.20.0.5")}}}},
			func(s *State) {
				s.VIPs[0].Backends = s.VIPs[0].Backends[:1]
				s.VIPs = append(s.VIPs, VIP{Service: "svc3", Addr: addr("10.20.0.6")})
			}},
		{"a removed VIP becomes a backend", Update{RemovedVIPs: []netip.Addr{addr("10.20.1.2")},
			VIPs: []VIP{{Service: "svc1", Name: "web", Network: "nw1", Addr: addr("10.20.0.2"), Backends: []netip.Addr{addr("10.20.1.2")}}}},
			func(s *State) {
				s.VIPs = []VIP{{Service: "svc1", Name: "web", Network: "nw1", Addr: addr("10.20.0.2"), Backends: []netip.Addr{addr("10.20.1.2")}}}
			}},
		{"ingress port replaced by host", Update{Ports: []Port{{Service: "svc1", Name: "web", Protocol: TCP, Published: 8080, Mode: Host}}},
			func(s *State) { s.Ports[0].Mode, s.Ports[0].Backends = Host, nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := NewIndex(appliedState())
			if err := x.Check(c.update); err != nil {
				t.Fatalf("Check = %v", err)
			}
			x.Apply(c.update)
			want := appliedState()
			c.want(&want)
			requireIndexOf(t, x, want)
		})
	}
}

// The Index keeps its own backend lists: the caller may reuse its slices.
func TestIndexCopiesBackends(t *testing.T) {
	s := appliedState()
	x := NewIndex(s)
	v := VIP{Service: "svc3", Addr: addr("10.20.2.2"), Backends: []netip.Addr{addr("10.20.2.5")}}
	x.Apply(Update{VIPs: []VIP{v}})
	s.VIPs[0].Backends[0] = addr("10.20.9.9")
	v.Backends[0] = addr("10.20.9.8")
	for _, got := range x.State().VIPs {
		if slices.Contains(got.Backends, addr("10.20.9.9")) || slices.Contains(got.Backends, addr("10.20.9.8")) {
			t.Errorf("VIP %s has the caller's later backend: %v", got.Addr, got.Backends)
		}
	}
}

// applyUpdate is the State after u, the slow way: what Check and Apply must agree with.
func applyUpdate(s State, u Update) State {
	out := State{SNAT: s.SNAT}
	for _, v := range s.VIPs {
		if !slices.Contains(u.RemovedVIPs, v.Addr) && !slices.ContainsFunc(u.VIPs, func(w VIP) bool { return w.Addr == v.Addr }) {
			out.VIPs = append(out.VIPs, v)
		}
	}
	out.VIPs = append(out.VIPs, u.VIPs...)
	for _, p := range s.Ports {
		if !slices.Contains(u.RemovedPorts, p.PortKey()) && !slices.ContainsFunc(u.Ports, func(q Port) bool { return q.PortKey() == p.PortKey() }) {
			out.Ports = append(out.Ports, p)
		}
	}
	out.Ports = append(out.Ports, u.Ports...)
	return out
}

// randomCase draws States and Updates over a few addresses, services and ports, so that VIPs,
// backends and keys collide often.
type randomCase struct{ r *rand.Rand }

func (g randomCase) addr() netip.Addr {
	return netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + g.r.IntN(6))})
}

func (g randomCase) service() string { return []string{"s1", "s2", "s3"}[g.r.IntN(3)] }

func (g randomCase) vip() VIP {
	v := VIP{Service: g.service(), Addr: g.addr()}
	for range g.r.IntN(3) {
		if b := g.addr(); !slices.Contains(v.Backends, b) {
			v.Backends = append(v.Backends, b)
		}
	}
	return v
}

func (g randomCase) key() PortKey {
	return PortKey{Protocol: Protocol(1 + g.r.IntN(2)), Published: uint16(1 + g.r.IntN(2))}
}

func (g randomCase) port() Port {
	k := g.key()
	p := Port{Service: g.service(), Protocol: k.Protocol, Published: k.Published, Mode: PublishMode(1 + g.r.IntN(2))}
	if g.r.IntN(2) == 0 {
		p.Backends = []Backend{{Addr: g.addr(), Port: 80}}
	}
	return p
}

// state draws a valid State.
func (g randomCase) state() State {
	for {
		var s State
		for range g.r.IntN(4) {
			s.VIPs = append(s.VIPs, g.vip())
		}
		for range g.r.IntN(3) {
			s.Ports = append(s.Ports, g.port())
		}
		if g.r.IntN(3) > 0 {
			s.SNAT = addr("10.0.1.1")
		}
		if s.Validate() == nil {
			return s
		}
	}
}

func (g randomCase) update() Update {
	var u Update
	for range g.r.IntN(3) {
		u.VIPs = append(u.VIPs, g.vip())
	}
	for range g.r.IntN(3) {
		u.RemovedVIPs = append(u.RemovedVIPs, g.addr())
	}
	for range g.r.IntN(2) {
		u.Ports = append(u.Ports, g.port())
	}
	for range g.r.IntN(2) {
		u.RemovedPorts = append(u.RemovedPorts, g.key())
	}
	return u
}

// Over many random States and Updates: Check refuses every Update whose State State.Validate
// refuses; what it accepts, Apply turns into exactly that State; and it refuses a valid result
// only for a rule of Updates (a key twice in it, another service's key kept).
func TestIndexAgreesWithValidate(t *testing.T) {
	g := randomCase{r: rand.New(rand.NewPCG(7, 11))}
	accepted, refused := 0, 0
	for range 20000 {
		s, u := g.state(), g.update()
		after := applyUpdate(s, u)
		x := NewIndex(s)
		err := x.Check(u)
		var fe *FieldError
		switch {
		case after.Validate() != nil && err == nil:
			t.Fatalf("Check accepted %+v on %+v, whose result is invalid: %v", u, s, after.Validate())
		case err == nil:
			accepted++
			x.Apply(u)
			requireIndexOf(t, x, after)
		case !errors.As(err, &fe):
			t.Fatalf("Check = %v, want a *FieldError", err)
		default:
			refused++
			requireIndexOf(t, x, s)
			updateRule := strings.Contains(fe.Reason, "remove it in the same Update") ||
				strings.HasPrefix(fe.Field, "Removed") && strings.Contains(fe.Reason, "is also")
			if after.Validate() == nil && !updateRule {
				t.Fatalf("Check refused %+v on %+v (%v), whose result is valid", u, s, err)
			}
		}
	}
	if accepted < 1000 || refused < 1000 {
		t.Errorf("%d Updates accepted and %d refused: the draws do not cover both", accepted, refused)
	}
	t.Logf("%d Updates accepted, %d refused", accepted, refused)
}
