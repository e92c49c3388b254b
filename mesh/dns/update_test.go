package dns

// Tests of Update: after Sync(zones) then Updates, the server answers exactly as a server
// given Sync(zones with the updates applied); bad input changes nothing; rotation counters
// survive; queries racing Updates see each service whole, before or after.

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// updateStep is the input of one Update of testNetwork.
type updateStep struct {
	set     []Service
	removed []string
}

// applyUpdate is what Update must do to a zone's services, done the plain way: the names of
// removed out, then each of set in place of the one of its name (case-insensitive) or added.
func applyUpdate(services []Service, step updateStep) []Service {
	out := slices.DeleteFunc(slices.Clone(services), func(svc Service) bool {
		return slices.ContainsFunc(step.removed, func(name string) bool { return strings.EqualFold(name, svc.Name) })
	})
	for _, svc := range step.set {
		i := slices.IndexFunc(out, func(have Service) bool { return strings.EqualFold(have.Name, svc.Name) })
		if i < 0 {
			out = append(out, svc)
		} else {
			out[i] = svc
		}
	}
	return out
}

func TestUpdateMatchesSync(t *testing.T) {
	ip := netip.MustParseAddr
	web := testServices()[0]
	api := Service{Name: "api", VIP: ip("198.18.53.3"), Tasks: addrs("198.18.53.31", "198.18.53.32"),
		Slots: map[uint64]netip.Addr{1: ip("198.18.53.31"), 2: ip("198.18.53.32")}}
	// onDBTask holds db's first task IP: a PTR query for it names both services.
	onDBTask := Service{Name: "shared", Tasks: addrs("198.18.53.21", "198.18.53.33")}
	movedWeb := Service{Name: "web", VIP: ip("198.18.53.4"), Tasks: addrs("198.18.53.14", "198.18.53.11"),
		Slots: map[uint64]netip.Addr{1: ip("198.18.53.11"), 2: ip("198.18.53.14"), 4: ip("198.18.53.15")}}
	renamed := web
	renamed.Name = "front"
	webDNSRR := web
	webDNSRR.VIP = netip.Addr{}
	dbVIP := Service{Name: "db", VIP: ip("198.18.53.5"), Tasks: slices.Clone(dbTasks)}
	dbVIPOnTask := Service{Name: "db", VIP: dbTasks[0], Tasks: slices.Clone(dbTasks)}
	upperWeb := movedWeb
	upperWeb.Name = "WEB"

	cases := []struct {
		name  string
		steps []updateStep
	}{
		{"nothing", []updateStep{{}}},
		{"add a service", []updateStep{{set: []Service{api}}}},
		{"replace tasks, slots and VIP", []updateStep{{set: []Service{movedWeb}}}},
		{"replace under another case", []updateStep{{set: []Service{upperWeb}}}},
		{"remove", []updateStep{{removed: []string{"db"}}}},
		{"remove case-insensitively", []updateStep{{removed: []string{"WeB"}}}},
		{"remove a name the zone lacks", []updateStep{{removed: []string{"nope"}}}},
		{"remove everything", []updateStep{{removed: []string{"web", "db", "idle"}}}},
		{"rename by remove and add", []updateStep{{set: []Service{renamed}, removed: []string{"web"}}}},
		{"remove and set one name", []updateStep{{set: []Service{movedWeb}, removed: []string{"web"}}}},
		{"vip to dnsrr", []updateStep{{set: []Service{webDNSRR}}}},
		{"dnsrr to vip", []updateStep{{set: []Service{dbVIP}}}},
		{"a VIP that is a task's IP", []updateStep{{set: []Service{dbVIPOnTask}}}},
		{"several at once", []updateStep{{set: []Service{api, dbVIP}, removed: []string{"idle"}}}},
		{"task IP of two services", []updateStep{{set: []Service{onDBTask}}}},
		{"task IP of two services, one removed", []updateStep{
			{set: []Service{onDBTask}}, {removed: []string{"db"}}}},
		{"task IP of two services, one moves off it", []updateStep{
			{set: []Service{onDBTask}}, {set: []Service{{Name: "shared", Tasks: addrs("198.18.53.34")}}}}},
		{"task IP of two services, the other moves off it", []updateStep{
			{set: []Service{onDBTask}}, {set: []Service{{Name: "db", Tasks: dbTasks[1:]}}}}},
		{"back and forth", []updateStep{
			{set: []Service{movedWeb}}, {set: []Service{web}}, {removed: []string{"web"}}, {set: []Service{web}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			updated := newTestServer(t, Config{})
			if err := updated.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
				t.Fatal(err)
			}
			services := testServices()
			for i, step := range tc.steps {
				if err := updated.Update(testNetwork, step.set, step.removed); err != nil {
					t.Fatalf("Update %d: %v", i, err)
				}
				services = applyUpdate(services, step)
			}
			synced := newTestServer(t, Config{})
			zone := testZone(netip.Addr{})
			zone.Services = services
			if err := synced.Sync([]Zone{zone}); err != nil {
				t.Fatal(err)
			}
			if got, want := updated.Records(), synced.Records(); !reflect.DeepEqual(got, want) {
				t.Errorf("Records after Update:\n%v\nafter Sync of the same:\n%v", got, want)
			}
			questions := questionsAbout(append(testServices(), api, onDBTask, movedWeb, renamed, dbVIP))
			if got, want := answers(t, updated, questions), answers(t, synced, questions); !reflect.DeepEqual(got, want) {
				for _, q := range questions {
					if !reflect.DeepEqual(got[q], want[q]) {
						t.Errorf("%s: %s after Update, %s after Sync of the same", q, got[q], want[q])
					}
				}
			}
		})
	}
}

// question is one Lookup.
type question struct {
	name  string
	qtype uint16
}

func (q question) String() string { return q.name + "/" + dns.TypeToString[q.qtype] }

// questionsAbout are the questions that tell services' records apart: A for every name each
// may have (and slot 7, which none has), PTR for every address any of them has.
func questionsAbout(services []Service) []question {
	var out []question
	var ips []netip.Addr
	for _, svc := range services {
		for _, name := range []string{"", "tasks.", "1.", "2.", "3.", "4.", "7."} {
			out = append(out, question{name + svc.Name, dns.TypeA})
		}
		ips = append(ips, svc.VIP)
		ips = append(ips, svc.Tasks...)
		for _, ip := range svc.Slots {
			ips = append(ips, ip)
		}
	}
	for _, ip := range ips {
		if ip.IsValid() {
			out = append(out, question{reverseOf(ip), dns.TypePTR})
		}
	}
	return out
}

// reverseOf is the reverse name of ip.
func reverseOf(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa.", b[3], b[2], b[1], b[0])
}

// answers asks s questions on testNetwork: each answer's code, addresses (sorted: lists
// rotate), PTR names and whether it was forwarded.
func answers(t *testing.T, s *Server, questions []question) map[question]string {
	t.Helper()
	out := make(map[question]string, len(questions))
	for _, q := range questions {
		a, err := s.Lookup(testNetwork, q.name, q.qtype)
		if err != nil {
			t.Fatalf("Lookup %s: %v", q, err)
		}
		out[q] = fmt.Sprintf("%s %v %v forwarded=%v", dns.RcodeToString[a.Rcode], sorted(a.Addrs), a.Names, a.Forwarded)
	}
	return out
}

func TestUpdateRefusesBadInput(t *testing.T) {
	ip := netip.MustParseAddr
	api := Service{Name: "api", Tasks: addrs("198.18.53.40")}
	cases := []struct {
		name    string
		set     []Service
		removed []string
		field   string
		reason  string // a part of the reason
	}{
		{"a name twice in set", []Service{api, {Name: "API"}}, nil, "set[1].Name", `"API" repeats set[0]`},
		{"empty name", []Service{api, {}}, nil, "set[1].Name", "empty"},
		{"name with a dot", []Service{{Name: "a.b"}}, nil, "set[0].Name", "'.'"},
		{"name too long", []Service{{Name: strings.Repeat("a", 64)}}, nil, "set[0].Name", "at most 63"},
		{"IPv6 VIP", []Service{api, {Name: "v6", VIP: ip("2001:db8::1")}}, nil, "set[1].VIP", "not an IPv4"},
		{"duplicate task IP", []Service{{Name: "api", Tasks: addrs("198.18.53.40", "198.18.53.40")}}, nil,
			"set[0].Tasks[1]", "repeats Tasks[0]"},
		{"slot 0", []Service{{Name: "api", Slots: map[uint64]netip.Addr{0: ip("198.18.53.40")}}}, nil,
			"set[0].Slots[0]", "start at 1"},
		{"two slots on one IP", []Service{{Name: "api", Slots: map[uint64]netip.Addr{
			4: ip("198.18.53.40"), 7: ip("198.18.53.40")}}}, nil, "set[0].Slots[7]", "Slots[4]'s too"},
		{"empty removed name", []Service{api}, []string{"db", ""}, "removed[1]", "empty"},
		{"removed name with a dot", nil, []string{"web.front"}, "removed[0]", "'.'"},
	}

	s := newTestServer(t, Config{})
	if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	questions := questionsAbout(append(testServices(), api))
	wantRecords, wantAnswers := s.Records(), answers(t, s, questions)
	unchanged := func(t *testing.T) {
		t.Helper()
		if got := s.Records(); !reflect.DeepEqual(got, wantRecords) {
			t.Errorf("a refused Update changed the records: %v, want %v", got, wantRecords)
		}
		if got := answers(t, s, questions); !reflect.DeepEqual(got, wantAnswers) {
			t.Errorf("a refused Update changed the answers: %v, want %v", got, wantAnswers)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(testNetwork, tc.set, tc.removed)
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) {
				t.Fatalf("Update: %v, want a FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("refused %q because %q; want %q because ...%q...", fe.Field, fe.Reason, tc.field, tc.reason)
			}
			unchanged(t)
		})
	}
	t.Run("unknown network", func(t *testing.T) {
		if err := s.Update(otherNetwork, []Service{api}, nil); !errors.Is(err, ErrUnknownNetwork) {
			t.Errorf("Update of a network no zone has: %v, want ErrUnknownNetwork", err)
		}
		unchanged(t)
	})
	t.Run("closed", func(t *testing.T) {
		s.Close()
		if err := s.Update(testNetwork, []Service{api}, nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Update after Close: %v, want ErrClosed", err)
		}
	})
}

// Rotation goes on across an Update, for the services it replaces as for those it leaves, as
// across a Sync.
func TestUpdateKeepsRotation(t *testing.T) {
	db := testServices()[1]
	for _, tc := range []struct {
		name string
		step updateStep
	}{
		{"service replaced", updateStep{set: []Service{db}}},
		{"service removed and set again", updateStep{set: []Service{db}, removed: []string{"db"}}},
		{"another service replaced", updateStep{set: []Service{testServices()[0]}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, Config{})
			if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"db", "tasks.db"} {
				before, err := s.Lookup(testNetwork, name, dns.TypeA)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Update(testNetwork, tc.step.set, tc.step.removed); err != nil {
					t.Fatal(err)
				}
				after, err := s.Lookup(testNetwork, name, dns.TypeA)
				if err != nil {
					t.Fatal(err)
				}
				want := sorted(dbTasks)
				next := want[(slices.Index(want, before.Addrs[0])+1)%len(want)]
				if len(after.Addrs) == 0 || after.Addrs[0] != next {
					t.Errorf("%s: answers %v then %v across an Update; want the next to start at %v", name, before.Addrs, after.Addrs, next)
				}
			}
		})
	}
}

// An Update builds the records of the services it names and no other: the rest are shared
// with the records before, which is what keeps its cost off the zone's size.
func TestUpdateSharesUntouchedServices(t *testing.T) {
	s := newTestServer(t, Config{})
	if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	zone := s.current.Load().zones[testNetwork]
	before := zone.records.Load()
	web := testServices()[0]
	web.Tasks = web.Tasks[:2]
	if err := s.Update(testNetwork, []Service{web}, []string{"idle"}); err != nil {
		t.Fatal(err)
	}
	after := zone.records.Load()
	if after == before {
		t.Fatal("Update did not replace the zone's records")
	}
	dbBefore, _ := before.services.Get("db")
	dbAfter, _ := after.services.Get("db")
	if dbBefore == nil || dbAfter != dbBefore {
		t.Errorf("db's records after an Update of web: %p, before %p; want the same", dbAfter, dbBefore)
	}
	if webBefore, _ := before.services.Get("web"); webBefore.tasks.addrs[2] != webTasks[2] {
		t.Errorf("the Update changed the records before it: web's tasks are %v", webBefore.tasks.addrs)
	}
	if _, found := before.services.Get("idle"); !found {
		t.Error("the Update took idle out of the records before it")
	}
}

// Queries racing Updates get, for each service, the records before an Update or after it: never
// a list or a VIP of neither, and Records never shows one name of a service from one Update and
// another from the next (run with -race, this also checks that queries and Update share
// nothing unguarded).
func TestLookupDuringUpdate(t *testing.T) {
	s := newTestServer(t, Config{})
	if err := s.Sync([]Zone{testZone(netip.Addr{})}); err != nil {
		t.Fatal(err)
	}
	gens := [2]Service{testServices()[0], testServices()[0]}
	gens[1].VIP = netip.MustParseAddr("198.18.53.3")
	gens[1].Tasks = addrs("198.18.53.14", "198.18.53.15")
	gens[1].Slots = map[uint64]netip.Addr{1: gens[1].Tasks[0], 2: gens[1].Tasks[1]}
	genOf := func(vip netip.Addr) int {
		return slices.IndexFunc(gens[:], func(g Service) bool { return g.VIP == vip })
	}

	const updates, lookups = 300, 400
	done := make(chan error, 1)
	go func() {
		for i := range updates {
			step := updateStep{set: []Service{gens[(i+1)%2]}}
			if i%3 == 0 { // db leaves and comes back, on its own and with web
				step.removed = []string{"db"}
			} else {
				step.set = append(step.set, testServices()[1])
			}
			if err := s.Update(testNetwork, step.set, step.removed); err != nil {
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
		if len(vip.Addrs) != 1 || genOf(vip.Addrs[0]) < 0 {
			t.Fatalf("web answered %v, no Update's VIP", vip.Addrs)
		}
		tasks, err := s.Lookup(testNetwork, "tasks.web", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if !isRotationOf(tasks.Addrs, sorted(gens[0].Tasks)) && !isRotationOf(tasks.Addrs, sorted(gens[1].Tasks)) {
			t.Fatalf("tasks.web answered %v, no Update's tasks", tasks.Addrs)
		}
		ptr, err := s.Lookup(testNetwork, reverseOf(gens[1].Tasks[1]), dns.TypePTR)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ptr.Names, []string{"2.web."}) && !ptr.Forwarded {
			t.Fatalf("PTR of %s answered %v: neither web's slot 2 nor no local name", gens[1].Tasks[1], ptr.Names)
		}
		web := s.Records()[testNetwork]
		g := genOf(web["web"][0])
		if g < 0 || !slices.Equal(web["tasks.web"], sorted(gens[g].Tasks)) || !slices.Equal(web["2.web"], gens[g].Tasks[1:2]) {
			t.Fatalf("Records shows web %v, tasks.web %v, 2.web %v: not one Update's web", web["web"], web["tasks.web"], web["2.web"])
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// An IP that several services hold (the input broke an invariant) answers a PTR query with
// each of their names, sorted, through Sync and through Updates that add and take them out.
func TestPTROfSharedAddress(t *testing.T) {
	shared := dbTasks[0]
	holder := func(name string, slot uint64) Service { // a service with shared in slot, or as a task of no slot (0)
		svc := Service{Name: name, Tasks: []netip.Addr{shared}}
		if slot > 0 {
			svc.Slots = map[uint64]netip.Addr{slot: shared}
		}
		return svc
	}
	s := newTestServer(t, Config{})
	zone := testZone(netip.Addr{})
	zone.Services = append(zone.Services, holder("api", 2))
	if err := s.Sync([]Zone{zone}); err != nil {
		t.Fatal(err)
	}
	vipOnIt := Service{Name: "edge", VIP: shared}
	for _, step := range []struct {
		update updateStep
		want   []string
	}{
		{updateStep{}, []string{"2.api.", "db."}},
		{updateStep{set: []Service{vipOnIt}}, []string{"2.api.", "db.", "edge."}},
		{updateStep{removed: []string{"db"}}, []string{"2.api.", "edge."}},
		{updateStep{set: []Service{holder("api", 0)}}, []string{"api.", "edge."}},
		{updateStep{set: []Service{testServices()[1]}, removed: []string{"edge"}}, []string{"api.", "db."}},
		{updateStep{set: []Service{{Name: "api"}}}, []string{"db."}},
	} {
		if err := s.Update(testNetwork, step.update.set, step.update.removed); err != nil {
			t.Fatal(err)
		}
		got, err := s.Lookup(testNetwork, reverseOf(shared), dns.TypePTR)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Names, step.want) {
			t.Errorf("after Update(set %v, removed %v): PTR of %s answers %v, want %v",
				step.update.set, step.update.removed, shared, got.Names, step.want)
		}
	}
}
