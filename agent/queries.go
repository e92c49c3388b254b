package agent

// This file owns the answers to a manager's dataplane queries: a query rides on the session's
// messages until answered, so each is answered once per session, with the node's kernel state
// (Config.Dataplane) or the reason there is none.

import (
	"context"
	"sync"
	"time"

	"github.com/shoal/shoal/api"
)

// queryTimeout bounds reading the kernel and sending the answer.
const queryTimeout = 10 * time.Second

// queryAnswerer answers the queries of one session.
type queryAnswerer struct {
	a         *Agent
	client    api.DispatcherClient
	sessionID string
	wg        *sync.WaitGroup
	answered  map[string]bool // query IDs taken up; the session's messages are read by one goroutine
}

func newQueryAnswerer(a *Agent, client api.DispatcherClient, sessionID string, wg *sync.WaitGroup) *queryAnswerer {
	return &queryAnswerer{a: a, client: client, sessionID: sessionID, wg: wg, answered: map[string]bool{}}
}

// answer starts answering the queries not taken up yet.
func (q *queryAnswerer) answer(ctx context.Context, queries []*api.DataplaneQuery) {
	for _, query := range queries {
		if q.answered[query.GetId()] {
			continue
		}
		q.answered[query.GetId()] = true
		q.wg.Go(func() { q.report(ctx, query) })
	}
}

func (q *queryAnswerer) report(ctx context.Context, query *api.DataplaneQuery) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	req := &api.ReportDataplaneRequest{SessionId: q.sessionID, QueryId: query.GetId()}
	if q.a.cfg.Dataplane == nil {
		req.Error = "this node has no dataplane (its executor runs tasks without networks)"
	} else if nets, err := q.a.cfg.Dataplane(ctx, query.GetNetworkIds()); err != nil {
		req.Error = err.Error()
	} else {
		req.Networks = nets
	}
	if query.GetMesh() || query.GetDnsName() != "" {
		if q.a.cfg.Mesh == nil {
			req.Mesh = &api.MeshKernelState{Error: "this node runs no service mesh"}
		} else {
			req.Mesh, req.DnsAnswer = q.a.cfg.Mesh(ctx, query)
		}
	}
	if _, err := q.client.ReportDataplane(ctx, req); err != nil {
		q.a.cfg.Logger.Warn("answer a dataplane query", "query", query.GetId(), "err", err)
	}
}
