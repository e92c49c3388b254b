package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

// logProposer applies proposals in order to every store it feeds, the way
// raft would on every manager, with no network in between.
type logProposer struct {
	mu     sync.Mutex
	index  uint64
	stores []*MemoryStore
	// local is the store whose Apply result is returned.
	local *MemoryStore
}

func (p *logProposer) Propose(_ context.Context, payload []byte) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	var res any
	for _, s := range p.stores {
		r := s.Apply(p.index, payload)
		if s == p.local {
			res = r
		}
	}
	return res, nil
}

func (p *logProposer) ReadBarrier(context.Context) error { return nil }

func newTestStore(t *testing.T) (*MemoryStore, *logProposer) {
	t.Helper()
	s := New()
	p := &logProposer{stores: []*MemoryStore{s}, local: s}
	s.SetProposer(p)
	return s, p
}

func node(id, hostname string) *api.Node {
	return &api.Node{Id: id, Description: &api.NodeDescription{Hostname: hostname}}
}

func TestUpdateCreateReadDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	if err := s.Update(ctx, func(tx Tx) error { return tx.Create(node("n1", "a")) }); err != nil {
		t.Fatalf("create: %v", err)
	}
	var got *api.Node
	s.View(func(tx ReadTx) { got = tx.Node("n1") })
	if got == nil || got.Description.Hostname != "a" || got.Meta.GetVersion() != 1 || got.Meta.CreatedAt == nil {
		t.Fatalf("read back %v", got)
	}
	err := s.Update(ctx, func(tx Tx) error { return tx.Create(node("n1", "b")) })
	if !errors.Is(err, ErrExist) {
		t.Fatalf("second create: got %v, want ErrExist", err)
	}
	if err := s.Update(ctx, func(tx Tx) error {
		n := tx.Node("n1")
		n.Description.Hostname = "b"
		return tx.Update(n)
	}); err != nil {
		t.Fatalf("update: %v", err)
	}
	s.View(func(tx ReadTx) { got = tx.Node("n1") })
	if got.Description.Hostname != "b" || got.Meta.Version != 2 {
		t.Fatalf("after update %v", got)
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.Delete(tx.Node("n1")) }); err != nil {
		t.Fatalf("delete: %v", err)
	}
	s.View(func(tx ReadTx) { got = tx.Node("n1") })
	if got != nil {
		t.Fatalf("deleted node still there: %v", got)
	}
}

func TestStaleUpdateIsRefused(t *testing.T) {
	ctx := context.Background()
	s, p := newTestStore(t)
	if err := s.Update(ctx, func(tx Tx) error { return tx.Create(node("n1", "a")) }); err != nil {
		t.Fatal(err)
	}
	var stale *api.Node
	s.View(func(tx ReadTx) { stale = tx.Node("n1") })
	if err := s.Update(ctx, func(tx Tx) error {
		n := tx.Node("n1")
		n.Description.Hostname = "fresh"
		return tx.Update(n)
	}); err != nil {
		t.Fatal(err)
	}
	// A transaction made against the stale copy fails whole on apply.
	stale.Description.Hostname = "stale"
	tx := newTx(s, time.Now())
	if err := tx.Update(stale); err != nil {
		t.Fatal(err)
	}
	if err := tx.Create(node("n2", "x")); err != nil {
		t.Fatal(err)
	}
	payload, err := tx.payload()
	if err != nil {
		t.Fatal(err)
	}
	res, _ := p.Propose(ctx, payload)
	if err, _ := res.(error); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("stale update applied: result %v", res)
	}
	s.View(func(r ReadTx) {
		if r.Node("n1").Description.Hostname != "fresh" || r.Node("n2") != nil {
			t.Fatalf("a failed transaction changed the state: %v %v", r.Node("n1"), r.Node("n2"))
		}
	})
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.Create(&api.Node{Id: "n1", Spec: &api.NodeSpec{Annotations: &api.Annotations{Labels: map[string]string{}}}})
	}); err != nil {
		t.Fatal(err)
	}
	// Concurrent increments of a counter label must all land.
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Update(ctx, func(tx Tx) error {
					n := tx.Node("n1")
					if n.Spec.Annotations.Labels == nil {
						n.Spec.Annotations.Labels = map[string]string{}
					}
					n.Spec.Annotations.Labels["count"] += "x"
					return tx.Update(n)
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.View(func(tx ReadTx) {
		if got := len(tx.Node("n1").Spec.Annotations.Labels["count"]); got != writers*each {
			t.Fatalf("counter %d, want %d", got, writers*each)
		}
	})
}

func TestTxSeesItsOwnChanges(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	if err := s.Update(ctx, func(tx Tx) error {
		for _, id := range []string{"a", "b", "c"} {
			if err := tx.Create(node(id, id)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx Tx) error {
		if err := tx.Delete(tx.Node("a")); err != nil {
			return err
		}
		if err := tx.Create(node("d", "d")); err != nil {
			return err
		}
		b := tx.Node("b")
		b.Description.Hostname = "B"
		if err := tx.Update(b); err != nil {
			return err
		}
		var ids, hosts []string
		for _, n := range tx.Nodes() {
			ids = append(ids, n.Id)
			hosts = append(hosts, n.Description.Hostname)
		}
		if got, want := ids, []string{"b", "c", "d"}; !equal(got, want) {
			t.Errorf("tx.Nodes ids %v, want %v", got, want)
		}
		if got, want := hosts, []string{"B", "c", "d"}; !equal(got, want) {
			t.Errorf("tx.Nodes hosts %v, want %v", got, want)
		}
		if tx.Node("a") != nil {
			t.Errorf("deleted node visible inside its transaction")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWatchDeliversBatchesInOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := newTestStore(t)
	var before int
	ch := s.ViewAndWatch(ctx, func(tx ReadTx) { before = len(tx.Nodes()) })
	if before != 0 {
		t.Fatalf("empty store lists %d nodes", before)
	}
	const n = 50
	for i := 0; i < n; i++ {
		id := string(rune('a'+i%26)) + string(rune('a'+i/26))
		if err := s.Update(ctx, func(tx Tx) error { return tx.Create(node(id, id)) }); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for i := 0; i < n; i++ {
		select {
		case b := <-ch:
			if b.Index <= last || len(b.Events) != 1 || b.Events[0].Action != api.StoreAction_KIND_CREATE {
				t.Fatalf("batch %d: %+v after index %d", i, b, last)
			}
			last = b.Index
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %d never came", i)
		}
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	if err := s.Update(ctx, func(tx Tx) error {
		if err := tx.Create(&api.Cluster{Id: "c1", Spec: &api.ClusterSpec{Annotations: &api.Annotations{Name: "default"}}}); err != nil {
			return err
		}
		return tx.Create(node("n1", "a"))
	}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	ch := r.Watch(context.Background())
	if err := r.Restore(7, snap); err != nil {
		t.Fatal(err)
	}
	if b := <-ch; !b.Restored || b.Index != 7 {
		t.Fatalf("restore published %+v", b)
	}
	again, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(snap) {
		t.Fatalf("restored store snapshots differently")
	}
	if r.AppliedIndex() != 7 {
		t.Fatalf("applied index %d after restore at 7", r.AppliedIndex())
	}
	if err := r.Restore(8, []byte("not a snapshot")); err == nil {
		t.Fatalf("garbage snapshot restored")
	}
}

func TestWriteWithoutRaftIsRefused(t *testing.T) {
	s := New()
	err := s.Update(context.Background(), func(tx Tx) error { return tx.Create(node("n1", "a")) })
	if !errors.Is(err, ErrNoProposer) {
		t.Fatalf("got %v, want ErrNoProposer", err)
	}
}
