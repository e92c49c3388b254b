package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

// queryDispatcher sends one session message carrying queries, twice (a resend), and records
// the reports it gets.
type queryDispatcher struct {
	api.UnimplementedDispatcherServer
	queries []*api.DataplaneQuery
	reports chan *api.ReportDataplaneRequest
}

func (d *queryDispatcher) Session(_ *api.SessionRequest, stream api.Dispatcher_SessionServer) error {
	msg := &api.SessionMessage{SessionId: "s1", HeartbeatPeriod: durationpb.New(time.Hour), Queries: d.queries}
	for range 2 {
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

func (d *queryDispatcher) ReportDataplane(_ context.Context, req *api.ReportDataplaneRequest) (*api.ReportDataplaneResponse, error) {
	d.reports <- req
	return &api.ReportDataplaneResponse{}, nil
}

// Each query of the session is answered once, with the dataplane's state or its error.
func TestAgentAnswersDataplaneQueries(t *testing.T) {
	d := &queryDispatcher{
		queries: []*api.DataplaneQuery{{Id: "q1", NetworkIds: []string{"net1"}}, {Id: "q2", NetworkIds: []string{"broken"}}},
		reports: make(chan *api.ReportDataplaneRequest, 8),
	}
	a := newTestAgent([]string{serve(t, d)}, nil)
	a.cfg.Dataplane = func(_ context.Context, ids []string) ([]*api.OverlayKernelState, error) {
		if ids[0] == "broken" {
			return nil, errors.New("netlink: operation not permitted")
		}
		return []*api.OverlayKernelState{{NetworkId: ids[0], DeviceExists: true}}, nil
	}
	runAgent(t, a)
	got := map[string]*api.ReportDataplaneRequest{}
	for len(got) < 2 {
		select {
		case r := <-d.reports:
			if got[r.QueryId] != nil {
				t.Fatalf("query %s answered twice", r.QueryId)
			}
			got[r.QueryId] = r
		case <-time.After(10 * time.Second):
			t.Fatalf("answers %v, want q1 and q2", got)
		}
	}
	if r := got["q1"]; r.SessionId != "s1" || len(r.Networks) != 1 || r.Networks[0].NetworkId != "net1" || r.Error != "" {
		t.Errorf("answer to q1: %v", r)
	}
	if r := got["q2"]; r.Error != "netlink: operation not permitted" || len(r.Networks) != 0 {
		t.Errorf("answer to q2: %v", r)
	}
	select {
	case r := <-d.reports:
		t.Fatalf("a query answered again: %v", r)
	case <-time.After(200 * time.Millisecond):
	}
}
