package dns

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestSyncRefusesBadInput(t *testing.T) {
	ip := netip.MustParseAddr
	good := func() []Zone { return []Zone{testZone(netip.Addr{})} }
	withService := func(svc Service) []Zone {
		zones := good()
		zones[0].Services = append(zones[0].Services, svc)
		return zones
	}
	const svcField = "zones[0](" + testNetwork + ").Services[3]"
	cases := []struct {
		name   string
		zones  []Zone
		field  string
		reason string // a part of the reason
	}{
		{"duplicate service name", withService(Service{Name: "WEB"}),
			svcField + "(WEB).Name", "repeats " + "zones[0](" + testNetwork + ").Services[0]"},
		{"empty service name", withService(Service{}), svcField + ".Name", "empty"},
		{"service name with a dot", withService(Service{Name: "a.b"}), svcField + "(a.b).Name", "'.'"},
		{"service name ending in a hyphen", withService(Service{Name: "api-"}), svcField + "(api-).Name", "'-'"},
		{"service name too long", withService(Service{Name: strings.Repeat("a", 64)}), svcField + "(" + strings.Repeat("a", 64) + ").Name", "at most 63"},
		{"IPv6 VIP", withService(Service{Name: "api", VIP: ip("2001:db8::1")}), svcField + "(api).VIP", "not an IPv4"},
		{"IPv4-mapped VIP", withService(Service{Name: "api", VIP: ip("::ffff:198.18.53.9")}), svcField + "(api).VIP", "not an IPv4"},
		{"unspecified VIP", withService(Service{Name: "api", VIP: ip("0.0.0.0")}), svcField + "(api).VIP", "0.0.0.0"},
		{"zero task IP", withService(Service{Name: "api", Tasks: []netip.Addr{{}}}), svcField + "(api).Tasks[0]", "no address"},
		{"IPv6 task IP", withService(Service{Name: "api", Tasks: addrs("198.18.53.40", "2001:db8::2")}), svcField + "(api).Tasks[1]", "not an IPv4"},
		{"duplicate task IP", withService(Service{Name: "api", Tasks: addrs("198.18.53.40", "198.18.53.40")}), svcField + "(api).Tasks[1]", "repeats Tasks[0]"},
		{"duplicate task IP among many", withService(Service{Name: "api", Tasks: manyTasks(40, 3, 35)}), svcField + "(api).Tasks[35]", "repeats Tasks[3]"},
		{"slot 0", withService(Service{Name: "api", Slots: map[uint64]netip.Addr{0: ip("198.18.53.40")}}), svcField + "(api).Slots[0]", "start at 1"},
		{"IPv6 slot IP", withService(Service{Name: "api", Slots: map[uint64]netip.Addr{2: ip("2001:db8::2")}}), svcField + "(api).Slots[2]", "not an IPv4"},
		{"two slots on one IP", withService(Service{Name: "api", Slots: map[uint64]netip.Addr{
			4: ip("198.18.53.40"), 7: ip("198.18.53.40")}}), svcField + "(api).Slots[7]", "Slots[4]'s too"},
		{"empty network", []Zone{{Network: ""}}, "zones[0].Network", "empty"},
		{"duplicate network", append(good(), Zone{Network: testNetwork}), "zones[1].Network", "repeats zones[0]"},
		{"duplicate Listen", []Zone{
			{Network: testNetwork, Listen: gatewayA},
			{Network: otherNetwork, Listen: gatewayA}}, "zones[1](" + otherNetwork + ").Listen", "zones[0]'s too"},
		{"IPv6 Listen", []Zone{{Network: testNetwork, Listen: ip("fd00::1")}}, "zones[0](" + testNetwork + ").Listen", "not an IPv4"},
		{"unspecified Listen", []Zone{{Network: testNetwork, Listen: ip("0.0.0.0")}}, "zones[0](" + testNetwork + ").Listen", "0.0.0.0"},
		{"multicast Listen", []Zone{{Network: testNetwork, Listen: ip("224.0.0.251")}}, "zones[0](" + testNetwork + ").Listen", "multicast"},
	}

	s := newTestServer(t, Config{})
	before := good()
	if err := s.Sync(before); err != nil {
		t.Fatal(err)
	}
	wantRecords := s.Records()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Sync(tc.zones)
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) {
				t.Fatalf("Sync: %v, want a FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("refused %q because %q; want %q because ...%q...", fe.Field, fe.Reason, tc.field, tc.reason)
			}
			if got := s.Records(); !reflect.DeepEqual(got, wantRecords) {
				t.Errorf("a refused Sync changed the records: %v, want %v", got, wantRecords)
			}
			if got := s.Listening(); len(got) != 0 {
				t.Errorf("a refused Sync opened listeners: %v", got)
			}
		})
	}
	// The Sync that refused nothing still works after all those refusals.
	if err := s.Sync(before); err != nil {
		t.Errorf("Sync of the good zones again: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name   string
		cfg    Config
		field  string
		reason string
	}{
		{"negative port", Config{Port: -1}, "Config.Port", "not a port"},
		{"port too high", Config{Port: 65536}, "Config.Port", "not a port"},
		{"host name upstream", Config{Upstreams: []string{"dns.example:53"}}, "Config.Upstreams[0]", "not ip:port"},
		{"upstream without port", Config{Upstreams: []string{"198.18.0.10"}}, "Config.Upstreams[0]", "not ip:port"},
		{"upstream port 0", Config{Upstreams: []string{"198.18.0.10:0"}}, "Config.Upstreams[0]", "no reachable"},
		{"unspecified upstream", Config{Upstreams: []string{"0.0.0.0:53"}}, "Config.Upstreams[0]", "no reachable"},
		{"duplicate upstream", Config{Upstreams: []string{"198.18.0.10:53", "198.18.0.11:53", "198.18.0.10:53"}},
			"Config.Upstreams[2]", "repeats Config.Upstreams[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("New: %v, %v; want a FieldError", s, err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("refused %q because %q; want %q because ...%q...", fe.Field, fe.Reason, tc.field, tc.reason)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	upstreams := []string{"198.18.0.10:53", "[2001:db8::53]:5353"}
	s := newTestServer(t, Config{Upstreams: upstreams})
	if s.cfg.Port != 53 || s.cfg.TTL != 1 {
		t.Errorf("defaults: port %d, TTL %d; want 53 and 1", s.cfg.Port, s.cfg.TTL)
	}
	upstreams[0] = "198.18.0.99:53"
	if s.fwd.upstreams[0] != "198.18.0.10:53" {
		t.Errorf("changing the caller's Upstreams changed the server's: %v", s.fwd.upstreams)
	}
	if len(s.Records()) != 0 || len(s.Listening()) != 0 {
		t.Errorf("a new server has records %v and listeners %v", s.Records(), s.Listening())
	}
}

// manyTasks returns n task addresses, the one at repeat the same as the one at first.
func manyTasks(n, first, repeat int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{198, 18, 54, byte(i)})
	}
	out[repeat] = out[first]
	return out
}
