package dns

// This file owns the Server's lifecycle and its public methods: New, Sync, Update, Lookup,
// Records, Listening and Close. Sync and Update serialize with Close under one mutex; queries
// never take it: they read the current generation of records, and its zone's records, through
// atomic pointers.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Server is a node's embedded DNS server. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	fwd *forwarder

	// ctx ends when the Server closes: every listener's context, and Lookup's forwards,
	// derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	current atomic.Pointer[records] // the generation queries are answered from
	// clients maps a local task's address to the IDs of its other networks (SetClients).
	clients atomic.Pointer[map[netip.Addr][]string]

	mu        sync.Mutex // serializes Sync, Update and Close; guards the fields below
	listeners map[netip.Addr]*listener
	closed    bool
}

// New returns a Server with no zones; Sync gives it some. It refuses a bad Config with a
// *FieldError.
func New(cfg Config) (*Server, error) {
	cfg, err := validateConfig(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dns")
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		log:       log,
		fwd:       newForwarder(cfg.Upstreams),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[netip.Addr]*listener),
	}
	s.current.Store(buildRecords(nil, nil))
	return s, nil
}

// Sync makes zones, every network's whole records, the ones the server answers from, and
// listens at exactly their valid Listen addresses (see the package doc for the namespace).
// It refuses bad input with a *FieldError, and a Listen address it cannot bind with an error
// naming it; either way nothing changes. The first query after Sync returns gets the new
// records.
func (s *Server) Sync(zones []Zone) error {
	if err := validateZones(zones); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	next := buildRecords(zones, s.current.Load())

	var opened []*listener
	for _, addr := range slices.SortedFunc(maps.Keys(next.byListen), netip.Addr.Compare) {
		if l := s.listeners[addr]; l != nil {
			if !l.broken.Load() {
				continue
			}
			l.stop() // a socket of it failed: open it anew
			delete(s.listeners, addr)
		}
		ap := netip.AddrPortFrom(addr, uint16(s.cfg.Port))
		l, err := startListener(s.ctx, ap, s.handler(addr), s.log)
		if err != nil {
			for _, l := range opened {
				l.stop()
			}
			return fmt.Errorf("dns: listen for network %q at %s: %w", next.byListen[addr].network, ap, err)
		}
		opened = append(opened, l)
	}

	s.current.Store(next)
	for _, l := range opened {
		s.listeners[l.addr.Addr()] = l
		s.log.Info("DNS listener opened", "listen", l.addr.String(), "network", next.byListen[l.addr.Addr()].network)
	}
	for addr, l := range s.listeners {
		if next.byListen[addr] == nil {
			l.stop()
			delete(s.listeners, addr)
			s.log.Info("DNS listener closed", "listen", l.addr.String())
		}
	}
	return nil
}

// Update changes some services of network, one of the last Sync's zones, and nothing else: it
// takes out the services named in removed (a name the zone does not have is no error), then
// adds those of set, each in place of the zone's service of the same name (case-insensitive) if
// there is one. Listeners are not touched. Afterwards the server answers as if the last Sync had
// been given the zone with these changes; its cost follows the size of the services in set and
// removed, not the zone's. Bad input (set validated as Sync validates a zone's services, a
// removed name that is not a service name) is refused with a *FieldError naming the field
// ("set[1].Name", "removed[0]"), an unknown network with an error wrapping ErrUnknownNetwork;
// either way nothing changes. A query sees the zone before the Update or after it, never half
// of it; the first query after Update returns sees it after.
func (s *Server) Update(network string, set []Service, removed []string) error {
	if err := validateUpdate(set, removed); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	zone := s.current.Load().zones[network]
	if zone == nil {
		return fmt.Errorf("dns: update network %q: %w", network, ErrUnknownNetwork)
	}
	zone.records.Store(zone.records.Load().update(set, removed))
	return nil
}

// Broken reports whether the socket of a listener has failed: Update leaves listeners alone, and
// the next Sync opens it anew.
func (s *Server) Broken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if l.broken.Load() {
			return true
		}
	}
	return false
}

// Lookup returns what a query for name (with or without the trailing dot) of type qtype
// (dns.TypeA, ...) arriving on network's listener would get, forwarding it upstream when it
// would be; it advances the rotation as such a query does. It fails for a network that no Zone
// of the last Sync has (ErrUnknownNetwork) and for a name that is not a domain name.
func (s *Server) Lookup(network, name string, qtype uint16) (Answer, error) {
	if s.ctx.Err() != nil {
		return Answer{}, ErrClosed
	}
	zone := s.current.Load().zones[network]
	if zone == nil {
		return Answer{}, fmt.Errorf("dns: lookup %q on network %q: %w", name, network, ErrUnknownNetwork)
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return Answer{}, &FieldError{Field: "name", Reason: fmt.Sprintf("%q is not a domain name", name)}
	}
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), qtype)
	resp, forwarded := s.respond(s.ctx, zone, req, netip.Addr{})
	return answerOf(resp, forwarded), nil
}

// SetClients tells the server which other networks' names each local task may resolve. A task on
// several networks has each network's server in its resolv.conf and asks the first, which would
// forward a name of its second network upstream (and get NXDOMAIN, so the resolver asks no
// further). clients maps a task's address, on any of its networks, to the IDs of the task's other
// networks: a query from that address that the listener's zone does not answer is looked up in
// those networks' zones, in the order given, before it is forwarded. Network IDs the server has no
// zone for are skipped. The map replaces the previous one; the server keeps it, so the caller must
// not change it afterwards.
func (s *Server) SetClients(clients map[netip.Addr][]string) {
	s.clients.Store(&clients)
}

// Records returns what the server answers locally: network ID → name (lower case, without the
// trailing dot: "web", "tasks.web", "3.web") → addresses, in their order before rotation.
// Names that have no address (and so get NXDOMAIN) are left out.
func (s *Server) Records() map[string]map[string][]netip.Addr {
	current := s.current.Load()
	out := make(map[string]map[string][]netip.Addr, len(current.zones))
	for network, zone := range current.zones {
		out[network] = zone.records.Load().table()
	}
	return out
}

// Listening returns the addresses listened on (each over both UDP and TCP), sorted. A listener
// whose socket failed is left out until the next Sync opens it again.
func (s *Server) Listening() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(s.listeners))
	for _, l := range s.listeners {
		if !l.broken.Load() {
			out = append(out, l.addr)
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out
}

// Close stops every listener and cancels the forwards in flight; Sync and Lookup fail with
// ErrClosed afterwards. Closing twice is harmless.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	for addr, l := range s.listeners {
		l.stop()
		delete(s.listeners, addr)
	}
	return nil
}

// RecordsOf returns what a server synced with zones answers locally, in the form of Records: the
// desired side of a check against a node's server (netctl check). zones must be valid (Sync's
// rules); an invalid zone's records are whatever can be built from it.
func RecordsOf(zones []Zone) map[string]map[string][]netip.Addr {
	r := buildRecords(zones, nil)
	out := make(map[string]map[string][]netip.Addr, len(r.zones))
	for network, zone := range r.zones {
		out[network] = zone.records.Load().table()
	}
	return out
}
