package main

import (
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/shoal/shoal/agent/dataplane"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/overlay"
)

// removals records the networks whose overlay devices are removed.
type removals struct {
	mu  sync.Mutex
	ids []string
}

func (r *removals) Sync(overlay.Desired) (overlay.Changes, error) {
	return overlay.Changes{}, overlay.ErrNoBridge
}
func (r *removals) Update(string, overlay.EndpointUpdate) (overlay.Changes, error) {
	return overlay.Changes{}, nil
}
func (r *removals) Devices() ([]overlay.Device, error)              { return nil, nil }
func (r *removals) Inspect(overlay.Desired) (overlay.Report, error) { return overlay.Report{}, nil }
func (r *removals) Read(string) (overlay.Kernel, error)             { return overlay.Kernel{}, nil }
func (r *removals) Remove(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return nil
}

// A COMPLETE message lists every network: those the node knows beyond it were removed while no
// stream told it, and are taken off; an incremental one removes nothing.
func TestCompleteNetworksTakeRemovedOnesOff(t *testing.T) {
	r := &removals{}
	e := nodeExecutor{dp: dataplane.New(dataplane.Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: r, MTU: 1450})}
	e.onNetworks([]*api.Network{{Id: "net1aaaaaaaaaa"}, {Id: "net2bbbbbbbbbb"}}, true)
	e.onNetworks([]*api.Network{{Id: "net3cccccccccc"}}, false)
	if len(r.ids) != 0 {
		t.Fatalf("removed %v before any network was gone", r.ids)
	}
	e.onNetworks([]*api.Network{{Id: "net1aaaaaaaaaa"}}, true)
	if !slices.Equal(r.ids, []string{"net2bbbbbbbbbb", "net3cccccccccc"}) && !slices.Equal(r.ids, []string{"net3cccccccccc", "net2bbbbbbbbbb"}) {
		t.Fatalf("removed %v, want net2 and net3", r.ids)
	}
	var known []string
	for _, n := range e.dp.Networks() {
		known = append(known, n.GetId())
	}
	if !slices.Equal(known, []string{"net1aaaaaaaaaa"}) {
		t.Fatalf("the dataplane knows %v, want net1 alone", known)
	}
}
