package controlapi_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// heldProposer keeps proposals until the test releases them, so several
// writers can read the same state before any of their transactions
// applies: two managers' clients racing, or one on a lagging follower.
type heldProposer struct {
	store *store.MemoryStore
	index uint64 // only release touches it
	held  chan heldProposal
}

type heldProposal struct {
	payload []byte
	result  chan any
}

// holdProposals makes e's store commit through a heldProposer from now on.
func holdProposals(e *testEnv) *heldProposer {
	p := &heldProposer{store: e.store, index: e.store.AppliedIndex(), held: make(chan heldProposal)}
	e.store.SetProposer(p)
	return p
}

func (p *heldProposer) Propose(ctx context.Context, payload []byte) (any, error) {
	hp := heldProposal{payload: payload, result: make(chan any, 1)}
	select {
	case p.held <- hp:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return <-hp.result, nil
}

func (p *heldProposer) ReadBarrier(context.Context) error { return nil }

// release waits for n proposals, then applies them in the order they came.
func (p *heldProposer) release(n int) {
	batch := make([]heldProposal, 0, n)
	for range n {
		batch = append(batch, <-p.held)
	}
	for _, hp := range batch {
		p.index++
		hp.result <- p.store.Apply(p.index, hp.payload)
	}
}

// Two writes read the same state and both find their name or port free;
// the store must still commit only the first, and refuse the second as
// the Control API refuses a taken name or port.
func TestRacingWritesCommitOnlyOne(t *testing.T) {
	withPort := func(name string, port uint32) *api.ServiceSpec {
		s := validSpec(name)
		s.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{published(port, tcp, ingress)}}
		return s
	}
	create := func(spec *api.ServiceSpec) func(*testEnv) error {
		return func(e *testEnv) error {
			_, err := e.srv.CreateService(context.Background(), &api.CreateServiceRequest{Spec: spec})
			return err
		}
	}
	// publish9000 is an update of cur, as read before the race, to
	// publish port 9000 instead.
	publish9000 := func(cur *api.Service) func(*testEnv) error {
		spec := proto.Clone(cur.Spec).(*api.ServiceSpec)
		spec.Endpoint.Ports[0].PublishedPort = 9000
		return func(e *testEnv) error {
			_, err := e.srv.UpdateService(context.Background(), &api.UpdateServiceRequest{
				ServiceId: cur.Id, ServiceVersion: cur.Meta.Version, Spec: spec})
			return err
		}
	}
	tests := []struct {
		name   string
		writes func(t *testing.T, e *testEnv) [2]func(*testEnv) error
		code   codes.Code
		want   []string // the loser's message starts with one of these
	}{
		{"creates of one name", func(*testing.T, *testEnv) [2]func(*testEnv) error {
			return [2]func(*testEnv) error{create(validSpec("web")), create(validSpec("WEB"))}
		}, codes.AlreadyExists, []string{
			`spec.annotations.name: a service named "web" already exists`,
			`spec.annotations.name: a service named "WEB" already exists`,
		}},
		{"creates of one ingress port", func(*testing.T, *testEnv) [2]func(*testEnv) error {
			return [2]func(*testEnv) error{create(withPort("web", 8080)), create(withPort("api", 8080))}
		}, codes.InvalidArgument, []string{
			"spec.endpoint.ports[0]: port 8080/tcp is already published by service web",
			"spec.endpoint.ports[0]: port 8080/tcp is already published by service api",
		}},
		{"updates to one ingress port", func(t *testing.T, e *testEnv) [2]func(*testEnv) error {
			web, apiSvc := e.create(t, withPort("web", 8080)), e.create(t, withPort("api", 8081))
			return [2]func(*testEnv) error{publish9000(web), publish9000(apiSvc)}
		}, codes.InvalidArgument, []string{
			"spec.endpoint.ports[0]: port 9000/tcp is already published by service web",
			"spec.endpoint.ports[0]: port 9000/tcp is already published by service api",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			writes := tc.writes(t, e)
			before := e.services(t)
			p := holdProposals(e)
			errs := make(chan error, len(writes))
			for _, write := range writes {
				go func() { errs <- write(e) }()
			}
			p.release(len(writes))
			var refused []error
			for range writes {
				if err := <-errs; err != nil {
					refused = append(refused, err)
				}
			}
			if len(refused) != 1 {
				t.Fatalf("%d of 2 racing writes refused (%v), want exactly 1", len(refused), refused)
			}
			st := status.Convert(refused[0])
			if st.Code() != tc.code || !slices.ContainsFunc(tc.want, func(m string) bool { return strings.HasPrefix(st.Message(), m) }) {
				t.Errorf("the loser got %v %q, want %v starting with one of %q", st.Code(), st.Message(), tc.code, tc.want)
			}
			if after := e.services(t); len(after) != max(len(before), 1) {
				t.Errorf("the store holds %d services, want %d", len(after), max(len(before), 1))
			}
		})
	}
}

// A name or a port two services already share (an older manager let them
// clash) stops neither from being scaled or updated in other ways: only
// what a write takes anew is checked.
func TestAnOldClashLocksNoService(t *testing.T) {
	e := newTestEnv(t)
	spec := validSpec("web")
	spec.Endpoint = &api.EndpointSpec{Ports: []*api.PortConfig{published(8080, tcp, ingress)}}
	web := e.create(t, spec)
	var snap api.StoreSnapshot
	if err := proto.Unmarshal(e.snapshot(t), &snap); err != nil {
		t.Fatal(err)
	}
	twin := proto.Clone(web).(*api.Service)
	twin.Id = "twinofweb"
	snap.Services = append(snap.Services, twin)
	state, err := proto.Marshal(&snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Restore(e.store.AppliedIndex(), state); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{web.Id, twin.Id} {
		e.update(t, id, func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 5 })
		e.update(t, id, func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:2" })
	}
	// Taking another clashing port is still refused.
	cur := e.service(t, twin.Id)
	spec = proto.Clone(cur.Spec).(*api.ServiceSpec)
	spec.Endpoint.Ports = append(spec.Endpoint.Ports, published(8080, udp, ingress))
	if err := e.store.Update(t.Context(), func(tx store.Tx) error {
		w := tx.Service(web.Id)
		w.Spec.Endpoint.Ports = append(w.Spec.Endpoint.Ports, published(8080, udp, host))
		return tx.Update(w)
	}); err != nil {
		t.Fatal(err)
	}
	_, err = e.srv.UpdateService(t.Context(), &api.UpdateServiceRequest{ServiceId: cur.Id, ServiceVersion: cur.Meta.Version, Spec: spec})
	assertCode(t, err, codes.InvalidArgument, "spec.endpoint.ports[1]: port 8080/udp is already published by service web")
}

func (e *testEnv) services(t *testing.T) []*api.Service {
	t.Helper()
	var out []*api.Service
	e.store.View(func(tx store.ReadTx) { out = tx.Services() })
	return out
}

// laggingProposer is a follower's view of raft: transactions other managers commit wait in
// behind until a read barrier (or this manager's own proposal, which raft applies after them).
type laggingProposer struct {
	mu     sync.Mutex
	store  *store.MemoryStore
	index  uint64
	behind [][]byte
}

// committedElsewhere is a transaction another manager committed, not applied here yet.
func (p *laggingProposer) committedElsewhere(payload []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.behind = append(p.behind, payload)
}

func (p *laggingProposer) catchUpLocked() {
	for _, payload := range p.behind {
		p.index++
		p.store.Apply(p.index, payload)
	}
	p.behind = nil
}

func (p *laggingProposer) Propose(_ context.Context, payload []byte) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.catchUpLocked()
	p.index++
	return p.store.Apply(p.index, payload), nil
}

func (p *laggingProposer) ReadBarrier(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.catchUpLocked()
	return nil
}

// recordingProposer applies proposals at once and hands each payload on, as the leader's raft
// would replicate it.
type recordingProposer struct {
	syncProposer
	replicate func(payload []byte)
}

func (p *recordingProposer) Propose(ctx context.Context, payload []byte) (any, error) {
	p.replicate(payload)
	return p.syncProposer.Propose(ctx, payload)
}

// A client creates a network through one manager, then a service on it through another that has
// not applied the network yet: the second manager catches up instead of refusing the service for
// a network it does not know (read-your-writes through any manager).
func TestWriteAfterWriteThroughALaggingManager(t *testing.T) {
	leader, follower := newTestEnv(t), newTestEnv(t)
	lag := &laggingProposer{store: follower.store, index: follower.store.AppliedIndex()}
	follower.store.SetProposer(lag)
	leader.store.SetProposer(&recordingProposer{syncProposer: syncProposer{store: leader.store, index: leader.store.AppliedIndex()},
		replicate: lag.committedElsewhere})

	nw := leader.createNetwork(t, networkSpec("front", "10.20.0.0/24"))
	spec := validSpec("web")
	spec.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "front"}}
	resp, err := follower.srv.CreateService(t.Context(), &api.CreateServiceRequest{Spec: spec})
	if err != nil {
		t.Fatalf("create a service on the network just made, through the lagging manager: %v", err)
	}
	if got := resp.Service.Spec.Task.Networks[0].Target; got != nw.Id {
		t.Errorf("the service attaches to %q, want the network's ID %s", got, nw.Id)
	}
	// A refusal that stands after catching up is still a refusal.
	spec = validSpec("api")
	spec.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "no-such-network"}}
	if _, err := follower.srv.CreateService(t.Context(), &api.CreateServiceRequest{Spec: spec}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a service on a network no manager has: %v, want InvalidArgument", err)
	}
}
