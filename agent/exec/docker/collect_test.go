package docker

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// collectingNetworks is fakeNetworks that also collects, recording the sandboxes it was told are
// valid.
type collectingNetworks struct {
	*fakeNetworks
	mu    sync.Mutex
	valid [][]string
}

func (c *collectingNetworks) Collect(_ context.Context, valid []Sandbox) error {
	ids := make([]string, len(valid))
	for i, sb := range valid {
		ids[i] = sb.ID
	}
	slices.Sort(ids)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.valid = append(c.valid, ids)
	return nil
}

// CollectGarbage hands the Networks exactly this node's sandboxes, so attachments of sandboxes
// that are gone are released and those of running tasks kept.
func TestCollectGarbage(t *testing.T) {
	nets := &collectingNetworks{fakeNetworks: &fakeNetworks{addr: "198.18.0.11/32"}}
	e := newTestExecutor(t, nets, PullMissing)
	task := echoTask(1)
	startTask(t, e, task)
	ctx := context.Background()
	if err := e.CollectGarbage(ctx); err != nil {
		t.Fatalf("CollectGarbage: %v", err)
	}
	sb := inspect(t, containerName(task, e.cfg.NodeID)+sandboxSuffix)
	nets.mu.Lock()
	got := slices.Clone(nets.valid)
	nets.mu.Unlock()
	if len(got) != 1 || !slices.Equal(got[0], []string{sb.ID}) {
		t.Fatalf("Collect was given %v, want once the one sandbox %s", got, sb.ID)
	}

	// Without a collector there is nothing to do.
	plain := newTestExecutor(t, &fakeNetworks{}, PullMissing)
	if err := plain.CollectGarbage(ctx); err != nil {
		t.Fatalf("CollectGarbage without a collector: %v", err)
	}
}
