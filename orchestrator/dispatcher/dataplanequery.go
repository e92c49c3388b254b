package dispatcher

// This file owns the questions the Control API asks a node's agent about its dataplane (the
// kernel's overlay state, for netctl): a query rides on the node's session messages until the
// agent answers it with ReportDataplane. Agents only ever dial managers, so this is how a
// manager reads a node's kernel. It also serves the leader's endpoint views.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// pendingQuery is a query waiting for its node's answer.
type pendingQuery struct {
	q     *api.DataplaneQuery
	reply chan *api.ReportDataplaneRequest // buffered: one answer
}

// ErrNodeNotConnected is QueryDataplane's error for a node without a session here.
var ErrNodeNotConnected = errors.New("the node has no session with this manager")

// QueryDataplane asks node nodeID's agent what q asks (its overlay as its kernel has it, for
// q.network_ids, none: every network with a device there; its mesh; a DNS lookup), and waits for
// the answer until ctx ends. q's ID is set here.
func (d *Dispatcher) QueryDataplane(ctx context.Context, nodeID string, q *api.DataplaneQuery) (*api.ReportDataplaneRequest, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	q = proto.Clone(q).(*api.DataplaneQuery)
	q.Id = hex.EncodeToString(b)
	pq := &pendingQuery{q: q, reply: make(chan *api.ReportDataplaneRequest, 1)}
	d.mu.Lock()
	if d.running == nil {
		d.mu.Unlock()
		return nil, d.notLeader()
	}
	s, ok := d.sessions[nodeID]
	if !ok {
		d.mu.Unlock()
		return nil, fmt.Errorf("%w (node %s)", ErrNodeNotConnected, nodeID)
	}
	if s.queries == nil {
		s.queries = map[string]*pendingQuery{}
	}
	s.queries[pq.q.Id] = pq
	signal(s.changed)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if _, ok := s.queries[pq.q.Id]; ok {
			delete(s.queries, pq.q.Id)
			signal(s.changed) // no longer asked
		}
		d.mu.Unlock()
	}()
	select {
	case r := <-pq.reply:
		if r.Error != "" {
			return r, fmt.Errorf("node %s: %s", nodeID, r.Error)
		}
		return r, nil
	case <-s.done:
		return nil, fmt.Errorf("node %s's session ended before it answered", nodeID)
	case <-ctx.Done():
		return nil, fmt.Errorf("node %s did not answer: %w", nodeID, ctx.Err())
	}
}

// pendingQueries are the queries of session s not answered yet, by ID; d.mu is held.
func pendingQueries(s *session) []*api.DataplaneQuery {
	out := make([]*api.DataplaneQuery, 0, len(s.queries))
	for _, id := range slices.Sorted(maps.Keys(s.queries)) {
		out = append(out, s.queries[id].q)
	}
	return out
}

// ReportDataplane takes an agent's answer to a query of its session.
func (d *Dispatcher) ReportDataplane(ctx context.Context, req *api.ReportDataplaneRequest) (*api.ReportDataplaneResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, err := d.callerSessionLocked(ctx, req.SessionId, "a dataplane report")
	if err != nil {
		return nil, err
	}
	if pq, ok := s.queries[req.QueryId]; ok {
		delete(s.queries, req.QueryId)
		signal(s.changed) // no longer asked
		pq.reply <- req
	}
	// An answer nobody waits for any more (timed out) is dropped.
	return &api.ReportDataplaneResponse{}, nil
}

// Endpoints returns the endpoint views of networkIDs (none: every network), sorted by network
// and task; false when this manager is not leading.
func (d *Dispatcher) Endpoints(networkIDs []string) ([]*api.Endpoint, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.endpoints == nil {
		return nil, false
	}
	all := d.endpoints.all()
	if len(networkIDs) == 0 {
		return all, true
	}
	out := all[:0:0]
	for _, ep := range all {
		if slices.Contains(networkIDs, ep.NetworkId) {
			out = append(out, ep)
		}
	}
	return out, true
}

// Services returns the services' mesh views, sorted by ID; false when this manager is not
// leading.
func (d *Dispatcher) Services() ([]*api.ServiceView, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.services == nil {
		return nil, false
	}
	return d.services.all(), true
}
