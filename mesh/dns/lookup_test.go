package dns

// Tests of the answers, through Lookup (which goes through the same code as a query arriving on
// a listener), with no socket: the zones do not listen.

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// nameCase is one question and the answer it must get.
type nameCase struct {
	name    string
	qtype   uint16
	rcode   int
	addrs   []netip.Addr // compared as sets: lists rotate
	ptrs    []string
	forward bool
}

// nameCases are the questions every way of asking (Lookup, UDP, TCP) must answer alike, for
// testZone with no upstreams.
var nameCases = []nameCase{
	{name: "web", qtype: dns.TypeA, addrs: []netip.Addr{webVIP}},
	{name: "web.", qtype: dns.TypeA, addrs: []netip.Addr{webVIP}},
	{name: "WeB.", qtype: dns.TypeA, addrs: []netip.Addr{webVIP}},
	{name: "web", qtype: dns.TypeANY, addrs: []netip.Addr{webVIP}},
	{name: "tasks.web", qtype: dns.TypeA, addrs: webTasks},
	{name: "TASKS.Web.", qtype: dns.TypeA, addrs: webTasks},
	{name: "1.web", qtype: dns.TypeA, addrs: webTasks[:1]},
	{name: "3.WEB.", qtype: dns.TypeA, addrs: webTasks[2:]},
	{name: "db", qtype: dns.TypeA, addrs: dbTasks},
	{name: "tasks.db", qtype: dns.TypeA, addrs: dbTasks},
	// NODATA: the name exists, not with that type.
	{name: "web", qtype: dns.TypeAAAA},
	{name: "tasks.db", qtype: dns.TypeAAAA},
	{name: "2.web", qtype: dns.TypeAAAA},
	{name: "web", qtype: dns.TypeMX},
	{name: "db", qtype: dns.TypeTXT},
	// NXDOMAIN: the zone's names with no address.
	{name: "idle", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	{name: "tasks.idle", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	{name: "idle", qtype: dns.TypeAAAA, rcode: dns.RcodeNameError},
	{name: "4.web", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	{name: "1.db", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	{name: "01.web", qtype: dns.TypeA, rcode: dns.RcodeNameError}, // slot names are canonical decimal
	{name: "0.web", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	{name: "18446744073709551617.web", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	// PTR of a slot's IP, a VIP, a task of no slot.
	{name: "11.53.18.198.in-addr.arpa", qtype: dns.TypePTR, ptrs: []string{"1.web."}},
	{name: "2.53.18.198.IN-ADDR.ARPA.", qtype: dns.TypePTR, ptrs: []string{"web."}},
	{name: "22.53.18.198.in-addr.arpa", qtype: dns.TypePTR, ptrs: []string{"db."}},
	// Not the zone's: forwarded, and with no upstream, SERVFAIL.
	{name: "example.test", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, forward: true},
	{name: "www.web", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, forward: true},
	{name: "1.tasks.web", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, forward: true},
	{name: "99.53.18.198.in-addr.arpa", qtype: dns.TypePTR, rcode: dns.RcodeServerFailure, forward: true},
	{name: "web.front", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, forward: true},
}

func TestLookupNameForms(t *testing.T) {
	s := newTestServer(t, Config{})
	if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range nameCases {
		t.Run(tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			got, err := s.Lookup(testNetwork, tc.name, tc.qtype)
			if err != nil {
				t.Fatal(err)
			}
			if got.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[tc.rcode])
			}
			if !slices.Equal(sorted(got.Addrs), sorted(tc.addrs)) {
				t.Errorf("addresses %v, want %v", got.Addrs, tc.addrs)
			}
			if !slices.Equal(got.Names, tc.ptrs) {
				t.Errorf("names %v, want %v", got.Names, tc.ptrs)
			}
			if got.Forwarded != tc.forward {
				t.Errorf("forwarded %v, want %v", got.Forwarded, tc.forward)
			}
		})
	}
}

// Each answer for a list of task IPs starts one place further than the one before, so every
// task comes first in turn; VIPs do not rotate.
func TestLookupRotates(t *testing.T) {
	s := newTestServer(t, Config{})
	if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tasks.web", "db"} {
		want := sorted(testAddrsOf(name))
		var firsts []netip.Addr
		for range 2 * len(want) {
			got, err := s.Lookup(testNetwork, name, dns.TypeA)
			if err != nil {
				t.Fatal(err)
			}
			if !isRotationOf(got.Addrs, want) {
				t.Fatalf("%s: answer %v is not a rotation of %v", name, got.Addrs, want)
			}
			firsts = append(firsts, got.Addrs[0])
		}
		// Two full turns: the first addresses are the list twice over, in the list's order.
		for i, first := range firsts {
			if next := firsts[(i+1)%len(firsts)]; next != want[(slices.Index(want, first)+1)%len(want)] {
				t.Errorf("%s: first addresses %v do not go round %v", name, firsts, want)
				break
			}
		}
	}
}

// A Sync that keeps a name's addresses keeps its rotation going: Syncs come every time anything
// changes in the cluster, and restarting at the first task each time would send it most clients.
func TestSyncKeepsRotation(t *testing.T) {
	s := newTestServer(t, Config{})
	zones := []Zone{testZone(netip.Addr{})}
	if err := s.Sync(zones); err != nil {
		t.Fatal(err)
	}
	before, err := s.Lookup(testNetwork, "db", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(zones); err != nil {
		t.Fatal(err)
	}
	after, err := s.Lookup(testNetwork, "db", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if after.Addrs[0] == before.Addrs[0] {
		t.Errorf("answers %v then %v across a Sync: the rotation restarted", before.Addrs, after.Addrs)
	}
}

func TestLookupFollowsSync(t *testing.T) {
	s := newTestServer(t, Config{})
	zone := testZone(netip.Addr{})
	if err := s.Sync([]Zone{zone}); err != nil {
		t.Fatal(err)
	}
	newVIP := netip.MustParseAddr("198.18.53.3")
	newTask := netip.MustParseAddr("198.18.53.14")
	zone.Services[0].VIP = newVIP
	zone.Services[0].Tasks = append(zone.Services[0].Tasks, newTask)
	zone.Services[2].Tasks = []netip.Addr{newTask.Next()} // idle starts a task
	if err := s.Sync([]Zone{zone}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]netip.Addr{
		"web":        {newVIP},
		"tasks.web":  append(slices.Clone(webTasks), newTask),
		"idle":       {newTask.Next()},
		"tasks.idle": {newTask.Next()},
	} {
		got, err := s.Lookup(testNetwork, name, dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if got.Rcode != dns.RcodeSuccess || !slices.Equal(sorted(got.Addrs), sorted(want)) {
			t.Errorf("%s after Sync: %s %v, want %v", name, dns.RcodeToString[got.Rcode], got.Addrs, want)
		}
	}
	// And the network's removal takes its names away.
	if err := s.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(testNetwork, "web", dns.TypeA); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("Lookup on a removed network: %v, want ErrUnknownNetwork", err)
	}
}

func TestLookupRefuses(t *testing.T) {
	s := newTestServer(t, Config{})
	if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("nope", "web", dns.TypeA); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("unknown network: %v, want ErrUnknownNetwork", err)
	}
	for _, name := range []string{"", "a..b", strings.Repeat("a", 64) + ".web"} {
		_, err := s.Lookup(testNetwork, name, dns.TypeA)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "name" {
			t.Errorf("Lookup %q: %v, want a FieldError on name", name, err)
		}
	}
	s.Close()
	if _, err := s.Lookup(testNetwork, "web", dns.TypeA); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if err := s.Sync(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: %v, want ErrClosed", err)
	}
}

func TestRecords(t *testing.T) {
	s := newTestServer(t, Config{})
	other := Zone{Network: otherNetwork, Services: []Service{{Name: "Web", VIP: netip.MustParseAddr("198.18.54.2")}}}
	if err := s.Sync([]Zone{testZone(netip.Addr{}), other}); err != nil {
		t.Fatal(err)
	}
	got := s.Records()
	want := map[string]map[string][]netip.Addr{
		testNetwork: {
			"web":       {webVIP},
			"tasks.web": webTasks,
			"1.web":     webTasks[:1],
			"2.web":     webTasks[1:2],
			"3.web":     webTasks[2:],
			"db":        dbTasks,
			"tasks.db":  dbTasks,
		},
		otherNetwork: {"web": {netip.MustParseAddr("198.18.54.2")}},
	}
	if len(got) != len(want) {
		t.Fatalf("Records has networks %v, want %v", keys(got), keys(want))
	}
	for network, names := range want {
		if len(got[network]) != len(names) {
			t.Errorf("network %s: names %v, want %v", network, keys(got[network]), keys(names))
		}
		for name, addrs := range names {
			if !slices.Equal(got[network][name], addrs) {
				t.Errorf("network %s name %s: %v, want %v", network, name, got[network][name], addrs)
			}
		}
	}
	// The caller may change what Records returns without changing the server.
	got[testNetwork]["web"][0] = netip.MustParseAddr("198.18.53.250")
	if again := s.Records(); again[testNetwork]["web"][0] != webVIP {
		t.Errorf("changing Records' result changed the server: web is %v", again[testNetwork]["web"])
	}
}

// testAddrsOf is what testZone holds for name.
func testAddrsOf(name string) []netip.Addr {
	switch name {
	case "tasks.web":
		return webTasks
	case "db", "tasks.db":
		return dbTasks
	}
	panic("no test addresses for " + name)
}

// isRotationOf reports whether got is want rotated by some number of places.
func isRotationOf(got, want []netip.Addr) bool {
	if len(got) != len(want) || len(got) == 0 {
		return false
	}
	start := slices.Index(want, got[0])
	if start < 0 {
		return false
	}
	return slices.Equal(got, append(slices.Clone(want[start:]), want[:start]...))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Queries racing Syncs get one generation's answer or the other's, never a mix or a torn list
// (run with -race, this also checks that queries and Sync share nothing unguarded).
func TestLookupDuringSync(t *testing.T) {
	s := newTestServer(t, Config{})
	gens := [2]Zone{testZone(netip.Addr{}), testZone(netip.Addr{})}
	gens[1].Services[0].VIP = netip.MustParseAddr("198.18.53.3")
	gens[1].Services[0].Tasks = addrs("198.18.53.14", "198.18.53.15")
	if err := s.Sync([]Zone{gens[0]}); err != nil {
		t.Fatal(err)
	}
	const syncs, lookups = 200, 400
	done := make(chan error, 1)
	go func() {
		for i := range syncs {
			if err := s.Sync([]Zone{gens[(i+1)%2]}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range lookups {
		vip, err := s.Lookup(testNetwork, "web", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if len(vip.Addrs) != 1 || vip.Addrs[0] != gens[0].Services[0].VIP && vip.Addrs[0] != gens[1].Services[0].VIP {
			t.Fatalf("web answered %v, no generation's VIP", vip.Addrs)
		}
		tasks, err := s.Lookup(testNetwork, "tasks.web", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if !isRotationOf(tasks.Addrs, gens[0].Services[0].Tasks) && !isRotationOf(tasks.Addrs, gens[1].Services[0].Tasks) {
			t.Fatalf("tasks.web answered %v, no generation's tasks", tasks.Addrs)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
