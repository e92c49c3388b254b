package store

import (
	"context"
	"errors"
	"testing"

	"github.com/shoal/shoal/api"
)

func taskIDs(ts []*api.Task) []string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.Id
	}
	return ids
}

func equalIDs(a, b []string) bool {
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

// TestTaskIndexesFollowChanges moves tasks between nodes and services,
// deletes one, restores a snapshot into another store, and checks that both
// index lookups (committed and inside a transaction) agree with a scan.
func TestTaskIndexesFollowChanges(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	mustUpdate := func(fn func(Tx) error) {
		t.Helper()
		if err := s.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate(func(tx Tx) error {
		for _, tk := range []*api.Task{
			{Id: "t1", ServiceId: "s1", NodeId: "n1"},
			{Id: "t2", ServiceId: "s1"},
			{Id: "t3", ServiceId: "s2", NodeId: "n1"},
		} {
			if err := tx.Create(tk); err != nil {
				return err
			}
		}
		return nil
	})
	mustUpdate(func(tx Tx) error {
		t2 := tx.Task("t2")
		t2.NodeId = "n2"
		if err := tx.Update(t2); err != nil {
			return err
		}
		t3 := tx.Task("t3")
		t3.ServiceId = "s1"
		if err := tx.Update(t3); err != nil {
			return err
		}
		// Inside the transaction the lookups see the staged changes.
		if got := taskIDs(tx.TasksByService("s1")); !equalIDs(got, []string{"t1", "t2", "t3"}) {
			t.Errorf("staged TasksByService(s1) = %v", got)
		}
		if got := taskIDs(tx.SharedTasksByService("s1")); !equalIDs(got, []string{"t1", "t2", "t3"}) {
			t.Errorf("staged SharedTasksByService(s1) = %v", got)
		}
		if got := taskIDs(tx.SharedTasks()); !equalIDs(got, []string{"t1", "t2", "t3"}) || tx.SharedTasks()[1].NodeId != "n2" {
			t.Errorf("staged SharedTasks = %v, want t1 t2 t3 with t2 on n2", got)
		}
		if got := taskIDs(tx.TasksByNode("n1")); !equalIDs(got, []string{"t1", "t3"}) {
			t.Errorf("staged TasksByNode(n1) = %v", got)
		}
		if got := taskIDs(tx.TasksByNode("n2")); !equalIDs(got, []string{"t2"}) {
			t.Errorf("staged TasksByNode(n2) = %v", got)
		}
		return tx.Delete(tx.Task("t1"))
	})
	check := func(name string, st *MemoryStore) {
		t.Helper()
		st.View(func(tx ReadTx) {
			for _, c := range []struct {
				got, want []string
				what      string
			}{
				{taskIDs(tx.TasksByService("s1")), []string{"t2", "t3"}, "service s1"},
				{taskIDs(tx.SharedTasksByService("s1")), []string{"t2", "t3"}, "service s1 (shared)"},
				{taskIDs(tx.SharedTasks()), []string{"t2", "t3"}, "every service (shared)"},
				{taskIDs(tx.TasksByService("s2")), []string{}, "service s2"},
				{taskIDs(tx.TasksByNode("n1")), []string{"t3"}, "node n1"},
				{taskIDs(tx.TasksByNode("n2")), []string{"t2"}, "node n2"},
			} {
				if !equalIDs(c.got, c.want) {
					t.Errorf("%s: tasks of %s = %v, want %v", name, c.what, c.got, c.want)
				}
			}
		})
	}
	check("live", s)
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := New()
	if err := restored.Restore(9, snap); err != nil {
		t.Fatal(err)
	}
	check("restored", restored)
}

// TestUpdateOfDeletedObjectIsAConflict: a transaction that changes an
// object another transaction deleted since it was read fails as a version
// conflict (so Update runs its callback again) that still says not found.
func TestUpdateOfDeletedObjectIsAConflict(t *testing.T) {
	ctx := context.Background()
	s, p := newTestStore(t)
	if err := s.Update(ctx, func(tx Tx) error { return tx.Create(&api.Task{Id: "t1"}) }); err != nil {
		t.Fatal(err)
	}
	stale := newTx(s, s.now())
	tk := stale.Task("t1")
	tk.DesiredState = api.TaskState_TASK_STATE_REMOVE
	if err := stale.Update(tk); err != nil {
		t.Fatal(err)
	}
	payload, err := stale.payload()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx Tx) error { return tx.Delete(tx.Task("t1")) }); err != nil {
		t.Fatal(err)
	}
	p.index++
	res, _ := s.Apply(p.index, payload).(error)
	if !errors.Is(res, ErrVersionConflict) || !errors.Is(res, ErrNotFound) {
		t.Fatalf("applying the stale update: %v, want a version conflict that is also not found", res)
	}
	// Update re-runs a callback that meets this, and it sees the task gone.
	runs := 0
	err = s.Update(ctx, func(tx Tx) error {
		runs++
		return nil
	})
	if err != nil || runs != 1 {
		t.Fatalf("a plain update after it: %v, %d runs", err, runs)
	}
}

func TestNetworksSurviveASnapshot(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.Create(&api.Network{Id: "nw1", Vni: 4097, Spec: &api.NetworkSpec{Annotations: &api.Annotations{Name: "front"}}})
	}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := New()
	if err := restored.Restore(7, snap); err != nil {
		t.Fatal(err)
	}
	restored.View(func(tx ReadTx) {
		n := tx.Network("nw1")
		if n == nil || n.Vni != 4097 || n.Spec.Annotations.Name != "front" || len(tx.Networks()) != 1 {
			t.Fatalf("restored network %v", n)
		}
	})
}
