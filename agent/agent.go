package agent

// This file owns the session loop: pick a manager, open a session, heartbeat
// it, follow its assignments and report task states on it (worker.go,
// reporter.go), and on failure move to the leader the failing manager named
// or to the next known manager, with backoff. Tasks keep running while no
// session is open.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/agent/exec"
	"github.com/shoal/shoal/api"
)

// firstMessageTimeout bounds the wait for a new session's first message.
const firstMessageTimeout = 30 * time.Second

// ErrNodeRemoved is returned by Run when the cluster refuses this node's
// certificate because the node was removed.
var ErrNodeRemoved = errors.New("this node was removed from the cluster")

// Config is what an agent needs.
type Config struct {
	// Managers are the remote API addresses to try first.
	Managers []string
	// Dial opens an mTLS connection to a manager.
	Dial func(ctx context.Context, addr string) (*grpc.ClientConn, error)
	// Description is reported to the dispatcher, completed with what the
	// executor describes (resources, executor name and version; its engine
	// labels under the ones set here).
	Description *api.NodeDescription
	// Executor runs the node's tasks. It is the node's, not the agent's:
	// its workloads keep running when the agent stops, and the next agent
	// given the same executor adopts them. Nil: the agent runs no tasks
	// and opens no assignments stream.
	Executor exec.Executor
	// OnMessage is called with every session message, in order.
	OnMessage func(*api.SessionMessage)
	// Dataplane reads the node's overlay as the kernel has it, for the
	// networks named (none: all), to answer a manager's DataplaneQuery;
	// nil: queries are answered with an error saying the node has none.
	Dataplane func(ctx context.Context, networkIDs []string) ([]*api.OverlayKernelState, error)
	// OnNetworks is handed the networks each assignments message carries,
	// before its tasks (the CNI manager renders their configuration).
	// With complete (a stream's COMPLETE message), nets are every network of
	// the cluster: one the node knows and nets lack was removed meanwhile.
	OnNetworks func(nets []*api.Network, complete bool)
	// OnEndpoints is handed each assignments message's endpoint views, in
	// order: with complete, set is every network's whole view (a new
	// stream's first message); otherwise set and removed are changes.
	OnEndpoints func(complete bool, set []*api.Endpoint, removed []*api.EndpointKey)
	// OnNetworksRemoved is handed the IDs of networks the cluster removed,
	// before the tasks of the same message are applied.
	OnNetworksRemoved func(ids []string)
	// OnServices is handed each assignments message's service mesh views:
	// with complete, set is every service (a new stream's first message);
	// otherwise set and removed (IDs) are changes.
	OnServices func(complete bool, set []*api.ServiceView, removed []string)
	// Mesh answers the mesh part of a manager's DataplaneQuery (its load
	// balancer, published ports and DNS records, and a DNS lookup); nil:
	// the node reports none.
	Mesh func(ctx context.Context, q *api.DataplaneQuery) (*api.MeshKernelState, *api.DNSAnswer)
	// EndpointGrace is how long a task that was RUNNING with addresses on
	// networks keeps running after the cluster wants it stopped, before it
	// is shut down: the managers withdrew its endpoints in the same commit,
	// and every node's load balancer stops sending it new connections
	// within this time. 0: shut down at once.
	EndpointGrace time.Duration
	// NetworkStatus reports whether the node's network plugins can attach
	// tasks (their CNI STATUS); nil means always. It is asked at every
	// session start and every NetworkStatusPeriod: the answer goes in the
	// node's description, and when it changes the agent opens a new
	// session to report it, so the scheduler stops or resumes giving the
	// node tasks.
	NetworkStatus func(ctx context.Context) error
	// NetworkStatusPeriod defaults to 5s.
	NetworkStatusPeriod time.Duration
	Logger              *slog.Logger
}

// Agent keeps the node's session and runs the tasks assigned to the node.
type Agent struct {
	cfg     Config
	reports *reporter
	worker  *worker // set by Run when there is an executor

	mu       sync.Mutex
	managers []string
	next     string // a leader hint, tried first
	turn     int    // round-robin position in managers
}

// New returns an agent.
func New(cfg Config) *Agent {
	return &Agent{cfg: cfg, reports: newReporter(), managers: append([]string(nil), cfg.Managers...)}
}

// Managers returns the managers the agent knows of.
func (a *Agent) Managers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.managers...)
}

// Run keeps a session open until ctx ends or the node is removed. When a
// session ends it tries every other known manager at once (a follower names
// the leader, and the agent goes there), and backs off only once a whole
// round has failed. Run is called once per Agent; when it returns, the
// task runners have stopped, the executor's workloads have not.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if a.cfg.Executor != nil {
		a.worker = newWorker(ctx, a.cfg.Executor, a.reports, a.cfg.Logger)
		a.worker.onNetworks = a.cfg.OnNetworks
		a.worker.onEndpoints = a.cfg.OnEndpoints
		a.worker.onNetworksRemoved = a.cfg.OnNetworksRemoved
		a.worker.onServices = a.cfg.OnServices
		a.worker.endpointGrace = a.cfg.EndpointGrace
		defer a.worker.wait()
		defer cancel() // runners stop before wait
	}
	return a.run(ctx)
}

func (a *Agent) run(ctx context.Context) error {
	const minBackoff = 100 * time.Millisecond
	backoff, failures := minBackoff, 0
	for {
		addr := a.pick()
		if addr == "" {
			return fmt.Errorf("agent: no manager address to connect to")
		}
		started := time.Now()
		err := a.session(ctx, addr)
		if ctx.Err() != nil {
			return nil
		}
		if status.Code(err) == codes.PermissionDenied || status.Code(err) == codes.Unauthenticated {
			return fmt.Errorf("%w: %s", ErrNodeRemoved, status.Convert(err).Message())
		}
		if errors.Is(err, errNetworkStatusChanged) {
			a.cfg.Logger.Info("network plugins' status changed; reporting it in a new session", "manager", addr)
			a.setHint(addr)
			continue
		}
		if leader := leaderHint(err); leader != "" && leader != addr {
			a.cfg.Logger.Info("following the leader", "from", addr, "to", leader)
			a.setHint(leader)
			continue
		}
		if time.Since(started) > time.Minute {
			backoff, failures = minBackoff, 0 // it was a good session
		}
		a.cfg.Logger.Warn("session with manager ended", "manager", addr, "err", err)
		failures++
		wait := 20 * time.Millisecond
		if failures >= max(len(a.Managers()), 1) {
			wait, failures = backoff+rand.N(backoff), 0
			backoff = min(backoff*2, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// session runs one session with one manager until it fails.
func (a *Agent) session(ctx context.Context, addr string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := a.cfg.Dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	client := api.NewDispatcherClient(conn)
	desc := a.description(ctx)
	stream, err := client.Session(ctx, &api.SessionRequest{Description: desc})
	if err != nil {
		return err
	}
	// The first message comes once the leader has recorded the node; a
	// session stuck before that is abandoned and opened again.
	firstTimer := time.AfterFunc(firstMessageTimeout, cancel)
	first, err := stream.Recv()
	if !firstTimer.Stop() && err != nil {
		return fmt.Errorf("no session message from %s within %s: %w", addr, firstMessageTimeout, err)
	}
	if err != nil {
		return err
	}
	a.cfg.Logger.Info("session open", "manager", addr, "session", first.SessionId)
	a.handle(first)

	// The session's goroutines end with it: the first to fail cancels
	// the others, and session returns once all have.
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	queries := newQueryAnswerer(a, client, first.SessionId, &wg)
	queries.answer(ctx, first.Queries)
	wg.Go(func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			a.handle(msg)
			queries.answer(ctx, msg.Queries)
		}
	})
	wg.Go(func() { errc <- a.heartbeat(ctx, client, first) })
	if a.cfg.NetworkStatus != nil {
		wg.Go(func() { errc <- a.watchNetworkStatus(ctx, desc.NetworkNotReady) })
	}
	if a.worker != nil {
		wg.Go(func() { errc <- a.assignments(ctx, client, first.SessionId) })
		wg.Go(func() { errc <- a.reports.run(ctx, client, first.SessionId) })
	}
	return <-errc
}

// assignments follows the session's assignments stream into the worker.
func (a *Agent) assignments(ctx context.Context, client api.DispatcherClient, sessionID string) error {
	stream, err := client.Assignments(ctx, &api.AssignmentsRequest{SessionId: sessionID})
	if err != nil {
		return fmt.Errorf("assignments: %w", err)
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("assignments: %w", err)
		}
		a.worker.apply(msg)
	}
}

// description is Config.Description completed with the executor's.
func (a *Agent) description(ctx context.Context) *api.NodeDescription {
	desc := &api.NodeDescription{}
	if a.cfg.Description != nil {
		desc = proto.Clone(a.cfg.Description).(*api.NodeDescription)
	}
	desc.NetworkNotReady = a.networkNotReady(ctx)
	if a.cfg.Executor == nil {
		return desc
	}
	ed, err := a.cfg.Executor.Describe(ctx)
	if err != nil {
		a.cfg.Logger.Warn("describe the executor", "err", err)
		return desc
	}
	desc.Resources = ed.Resources
	desc.Executor = ed.Executor
	desc.EngineVersion = ed.EngineVersion
	labels := maps.Clone(ed.EngineLabels)
	if labels == nil {
		labels = make(map[string]string)
	}
	maps.Copy(labels, desc.EngineLabels)
	if len(labels) > 0 {
		desc.EngineLabels = labels
	}
	return desc
}

// errNetworkStatusChanged ends a session whose description no longer says
// what the network plugins' status is.
var errNetworkStatusChanged = errors.New("the network plugins' status changed")

// networkNotReady is why the network plugins cannot attach tasks, "" when
// they can.
func (a *Agent) networkNotReady(ctx context.Context) string {
	if a.cfg.NetworkStatus == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, networkStatusTimeout)
	defer cancel()
	if err := a.cfg.NetworkStatus(ctx); err != nil {
		return err.Error()
	}
	return ""
}

// networkStatusTimeout bounds one NetworkStatus: a plugin that hangs makes the node not ready,
// it does not keep the session from opening.
const networkStatusTimeout = 10 * time.Second

// watchNetworkStatus returns errNetworkStatusChanged once the plugins'
// status differs from reported, the one the session started with, on two
// checks in a row: a status that flaps does not reopen the session (and
// resync the node) at every check.
func (a *Agent) watchNetworkStatus(ctx context.Context, reported string) error {
	period := a.cfg.NetworkStatusPeriod
	if period <= 0 {
		period = 5 * time.Second
	}
	differs := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(period):
		}
		now := a.networkNotReady(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if now == reported {
			differs = 0
			continue
		}
		if differs++; differs >= 2 {
			a.cfg.Logger.Warn("network plugins' status changed", "was", reported, "now", now)
			return errNetworkStatusChanged
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context, client api.DispatcherClient, first *api.SessionMessage) error {
	period := first.HeartbeatPeriod.AsDuration()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(period):
		}
		hctx, cancel := context.WithTimeout(ctx, 2*period)
		resp, err := client.Heartbeat(hctx, &api.HeartbeatRequest{SessionId: first.SessionId})
		cancel()
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		if p := resp.Period.AsDuration(); p > 0 {
			period = p
		}
	}
}

func (a *Agent) handle(msg *api.SessionMessage) {
	if len(msg.Managers) > 0 {
		a.mu.Lock()
		a.managers = append([]string(nil), msg.Managers...)
		a.mu.Unlock()
	}
	if a.cfg.OnMessage != nil {
		a.cfg.OnMessage(msg)
	}
}

// pick returns the leader hint if there is one, else the next known
// manager in turn.
func (a *Agent) pick() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next != "" {
		addr := a.next
		a.next = ""
		return addr
	}
	if len(a.managers) == 0 {
		return ""
	}
	a.turn++
	return a.managers[a.turn%len(a.managers)]
}

func (a *Agent) setHint(addr string) {
	a.mu.Lock()
	a.next = addr
	a.mu.Unlock()
}

// leaderHint returns the leader address a follower named in its refusal.
func leaderHint(err error) string {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Reason == api.NotLeaderReason {
			return info.Metadata[api.LeaderAddrKey]
		}
	}
	return ""
}
