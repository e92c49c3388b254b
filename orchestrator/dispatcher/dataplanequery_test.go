package dispatcher_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/dispatcher"
)

// A dataplane query rides on the node's session messages until the agent answers it; the
// answer reaches the asker, and the query leaves the messages.
func TestQueryDataplane(t *testing.T) {
	e := newTestEnv(t, longPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	s := e.session(t, node1, "192.0.2.1:5000", desc1)
	sid := s.recv(t).SessionId

	if _, err := e.d.QueryDataplane(t.Context(), node2, &api.DataplaneQuery{}); !errors.Is(err, dispatcher.ErrNodeNotConnected) {
		t.Fatalf("query of a node without a session: %v, want ErrNodeNotConnected", err)
	}

	type result struct {
		r   *api.ReportDataplaneRequest
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := e.d.QueryDataplane(t.Context(), node1, &api.DataplaneQuery{NetworkIds: []string{"net1"}})
		done <- result{r, err}
	}()
	m := s.recv(t)
	if len(m.Queries) != 1 || len(m.Queries[0].NetworkIds) != 1 || m.Queries[0].NetworkIds[0] != "net1" {
		t.Fatalf("session message queries %v, want one about net1", m.Queries)
	}
	ctx := e.nodeContext(t, context.Background(), node1, "192.0.2.1:5000")
	// A report of another session is refused.
	if _, err := e.d.ReportDataplane(ctx, &api.ReportDataplaneRequest{SessionId: "old", QueryId: m.Queries[0].Id}); err == nil {
		t.Fatal("a report naming another session was taken")
	}
	report := &api.ReportDataplaneRequest{SessionId: sid, QueryId: m.Queries[0].Id,
		Networks: []*api.OverlayKernelState{{NetworkId: "net1", DeviceExists: true, Vni: 4096}}}
	if _, err := e.d.ReportDataplane(ctx, report); err != nil {
		t.Fatalf("ReportDataplane: %v", err)
	}
	select {
	case res := <-done:
		if res.err != nil || len(res.r.Networks) != 1 || res.r.Networks[0].Vni != 4096 {
			t.Fatalf("QueryDataplane = %v, %v; want the report", res.r, res.err)
		}
	case <-time.After(waitFor):
		t.Fatal("QueryDataplane did not return after the report")
	}
	if m := s.recv(t); len(m.Queries) != 0 {
		t.Fatalf("an answered query is still sent: %v", m.Queries)
	}

	// An agent's error is the asker's.
	go func() {
		r, err := e.d.QueryDataplane(t.Context(), node1, &api.DataplaneQuery{})
		done <- result{r, err}
	}()
	m = s.recv(t)
	if _, err := e.d.ReportDataplane(ctx, &api.ReportDataplaneRequest{SessionId: sid, QueryId: m.Queries[0].Id, Error: "netlink: permission denied"}); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.err == nil || res.err.Error() != "node "+node1+": netlink: permission denied" {
		t.Fatalf("QueryDataplane error %v, want the agent's", res.err)
	}
}
