package mesh

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// validState has a VIP with two backends, an ingress and a host port, and SNAT.
func validState() State {
	return State{
		VIPs: []VIP{{
			Service: "svc1", Name: "web", Network: "nw1", Addr: addr("10.20.0.2"),
			Backends: []netip.Addr{addr("10.20.0.5"), addr("10.20.0.6")},
		}},
		Ports: []Port{
			{Service: "svc1", Name: "web", Protocol: TCP, Published: 8080, Mode: Ingress,
				Backends: []Backend{{Addr: addr("10.20.0.5"), Port: 80}}},
			{Service: "svc2", Name: "dns", Protocol: UDP, Published: 53, Mode: Host},
		},
		SNAT: addr("10.20.0.254"),
	}
}

func TestValidateAcceptsValidStates(t *testing.T) {
	for name, s := range map[string]State{
		"full":                   validState(),
		"empty":                  {},
		"VIP without backends":   {VIPs: []VIP{{Service: "s", Addr: addr("10.0.0.1")}}},
		"host port without SNAT": {Ports: []Port{{Service: "s", Protocol: TCP, Published: 1, Mode: Host}}},
		"SNAT without ingress":   {SNAT: addr("10.0.0.1")},
	} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateRefusesBadFields(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*State)
		field  string
		reason string
	}{
		{"VIP missing", func(s *State) { s.VIPs[0].Addr = netip.Addr{} }, "VIPs[0].Addr", "missing"},
		{"VIP IPv6", func(s *State) { s.VIPs[0].Addr = addr("fd00::1") }, "VIPs[0].Addr", "not IPv4"},
		{"VIP mapped", func(s *State) { s.VIPs[0].Addr = addr("::ffff:10.0.0.1") }, "VIPs[0].Addr", "IPv4-mapped"},
		{"VIP loopback", func(s *State) { s.VIPs[0].Addr = addr("127.0.0.1") }, "VIPs[0].Addr", "loopback"},
		{"VIP multicast", func(s *State) { s.VIPs[0].Addr = addr("224.0.0.1") }, "VIPs[0].Addr", "multicast"},
		{"VIP unspecified", func(s *State) { s.VIPs[0].Addr = addr("0.0.0.0") }, "VIPs[0].Addr", "not a host"},
		{"VIP broadcast", func(s *State) { s.VIPs[0].Addr = addr("255.255.255.255") }, "VIPs[0].Addr", "broadcast"},
		{"duplicate VIP", func(s *State) { s.VIPs = append(s.VIPs, VIP{Service: "x", Addr: s.VIPs[0].Addr}) },
			"VIPs[1].Addr", "also VIPs[0]"},
		{"backend IPv6", func(s *State) { s.VIPs[0].Backends[1] = addr("fd00::5") }, "VIPs[0].Backends[1]", "not IPv4"},
		{"duplicate backend", func(s *State) { s.VIPs[0].Backends[1] = s.VIPs[0].Backends[0] },
			"VIPs[0].Backends[1]", "also Backends[0]"},
		{"backend is a VIP", func(s *State) {
			s.VIPs = append(s.VIPs, VIP{Service: "x", Addr: addr("10.20.0.9"), Backends: []netip.Addr{addr("10.20.0.2")}})
		}, "VIPs[1].Backends[0]", "VIP of VIPs[0]"},
		{"no service", func(s *State) { s.VIPs[0].Service = "" }, "VIPs[0].Service", "empty"},
		{"name with space", func(s *State) { s.VIPs[0].Name = "my web" }, "VIPs[0].Name", "space"},
		{"network too long", func(s *State) { s.VIPs[0].Network = strings.Repeat("n", MaxLabel+1) },
			"VIPs[0].Network", "longer than"},
		{"port 0", func(s *State) { s.Ports[0].Published = 0 }, "Ports[0].Published", "port 0"},
		{"bad protocol", func(s *State) { s.Ports[0].Protocol = 0 }, "Ports[0].Protocol", "not tcp or udp"},
		{"bad mode", func(s *State) { s.Ports[1].Mode = 7 }, "Ports[1].Mode", "mode(7)"},
		{"duplicate port", func(s *State) {
			s.Ports = append(s.Ports, Port{Service: "x", Protocol: TCP, Published: 8080, Mode: Host})
		}, "Ports[2]", "tcp/8080 is also published by Ports[0]"},
		{"backend port 0", func(s *State) { s.Ports[0].Backends[0].Port = 0 }, "Ports[0].Backends[0].Port", "port 0"},
		{"port backend IPv6", func(s *State) { s.Ports[0].Backends[0].Addr = addr("fd00::1") },
			"Ports[0].Backends[0].Addr", "not IPv4"},
		{"duplicate port backend", func(s *State) { s.Ports[0].Backends = append(s.Ports[0].Backends, s.Ports[0].Backends[0]) },
			"Ports[0].Backends[1]", "also Backends[0]"},
		{"ingress without SNAT", func(s *State) { s.SNAT = netip.Addr{} }, "SNAT", "required by the ingress port Ports[0] (tcp/8080)"},
		{"SNAT IPv6", func(s *State) { s.SNAT = addr("fd00::1") }, "SNAT", "not IPv4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validState()
			c.edit(&s)
			err := s.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Reason, c.reason) {
				t.Errorf("Validate = %q, want field %s and a reason with %q", err, c.field, c.reason)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{TCP.String(), "tcp"}, {UDP.String(), "udp"}, {Protocol(9).String(), "protocol(9)"},
		{Ingress.String(), "ingress"}, {Host.String(), "host"},
		{Random.String(), "random"}, {Hash.String(), "hash"},
		{Port{Protocol: UDP, Published: 53}.Key(), "udp/53"},
		{Backend{Addr: addr("10.0.0.1"), Port: 80}.String(), "10.0.0.1:80"},
		{Difference{Kind: "vip", Key: "10.0.0.2", Service: "s", Want: "a", Got: "b"}.String(),
			"vip 10.0.0.2 (service s): want a, got b"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	for _, s := range []string{"tcp", "udp"} {
		p, err := ParseProtocol(s)
		if err != nil || p.String() != s {
			t.Errorf("ParseProtocol(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseProtocol("sctp"); err == nil {
		t.Error("ParseProtocol(sctp) succeeded")
	}
}
