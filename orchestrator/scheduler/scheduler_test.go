package scheduler

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
	"github.com/shoal/shoal/orchestrator/store/storetest"
)

// start runs a scheduler on st until the test ends, with a tick too long
// to matter: everything these tests see must be driven by events.
func start(t *testing.T, st *store.MemoryStore, prepare ...func(*Scheduler)) {
	t.Helper()
	s := New(st, nil)
	s.tick = time.Hour
	for _, p := range prepare {
		p(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after its context ended, want nil", err)
		}
	})
}

func objects[T store.Object](ts ...T) []store.Object {
	out := make([]store.Object, 0, len(ts))
	for _, t := range ts {
		out = append(out, t)
	}
	return out
}

// assigned counts a service's ASSIGNED tasks per node.
func assigned(tx store.ReadTx, service string) map[string]int {
	out := map[string]int{}
	for _, t := range tx.TasksByService(service) {
		if t.Status.State == api.TaskState_TASK_STATE_ASSIGNED {
			out[t.NodeId]++
		}
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// laggingProposer is raft as seen from a manager that just won an
// election with its store behind the log: the transactions proposed while
// behind is set are committed but not applied here yet. They are applied,
// in log order, by the next read barrier or before the next proposal.
type laggingProposer struct {
	store *store.MemoryStore

	mu     sync.Mutex
	index  uint64
	behind bool
	unseen [][]byte
	// barrier, when set, is what ReadBarrier does instead of catching up.
	barrier func(context.Context) error
}

func newLaggingStore() (*store.MemoryStore, *laggingProposer) {
	s := store.New()
	p := &laggingProposer{store: s}
	s.SetProposer(p)
	return s, p
}

func (p *laggingProposer) Propose(ctx context.Context, payload []byte) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.behind {
		p.unseen = append(p.unseen, payload)
		return nil, nil
	}
	p.catchUp()
	p.index++
	return p.store.Apply(p.index, payload), nil
}

func (p *laggingProposer) ReadBarrier(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.barrier != nil {
		return p.barrier(ctx)
	}
	p.catchUp()
	return nil
}

// catchUp applies the unseen transactions; p.mu is held.
func (p *laggingProposer) catchUp() {
	for _, payload := range p.unseen {
		p.index++
		p.store.Apply(p.index, payload)
	}
	p.unseen = nil
}

// commitUnseen commits what fn writes without applying it here.
func (p *laggingProposer) commitUnseen(t *testing.T, fn func(store.Tx) error) {
	t.Helper()
	p.mu.Lock()
	p.behind = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.behind = false
		p.mu.Unlock()
	}()
	if err := p.store.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// A new leader whose store lags the log must catch up before it places
// anything: here the old leader's last commits (a task now running on n1
// and using all of it) are not applied yet when Run starts.
func TestRunCatchesUpWithTheLogFirst(t *testing.T) {
	st, p := newLaggingStore()
	create(t, st, node("n1", withResources(1, 8*gib)))
	create(t, st, task("web", 1, reserving(1, 0)))
	p.commitUnseen(t, func(tx store.Tx) error { return tx.Create(task("old", 1, running("n1"), reserving(1, 0))) })
	start(t, st)

	const why = "no suitable node (insufficient resources on 1 node)"
	waitFor(t, st, "web.1 placed or explained", func(tx store.ReadTx) bool {
		w := tx.Task("web.1")
		return w.Status.State != api.TaskState_TASK_STATE_PENDING || w.Status.Message == why
	})
	st.View(func(tx store.ReadTx) {
		if w := tx.Task("web.1"); w.Status.State != api.TaskState_TASK_STATE_PENDING {
			t.Errorf("web.1 is %v on %q beside old.1, which uses all of n1; want pending: %q", w.Status.State, w.NodeId, why)
		}
	})
}

// A leader that cannot confirm it caught up places nothing: Run fails (the
// manager restarts it), or returns nil if leadership ended meanwhile.
func TestRunWithoutCatchingUp(t *testing.T) {
	errNoLeader := errors.New("no leader")
	tests := []struct {
		name    string
		barrier func(context.Context) error
		cancel  bool // end Run's context while it waits
		want    error
	}{
		{"barrier fails", func(context.Context) error { return errNoLeader }, false, errNoLeader},
		{"leadership ends first", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, p := newLaggingStore()
			create(t, st, node("n1"))
			create(t, st, task("web", 1))
			p.mu.Lock()
			p.barrier = tt.barrier
			p.mu.Unlock()

			s := New(st, nil)
			s.tick = time.Hour
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			if tt.cancel {
				cancel()
			}
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
					t.Errorf("Run returned %v, want %v", err, tt.want)
				}
			case <-time.After(30 * time.Second): // guards against a hang only
				cancel()
				<-done
				t.Fatal("Run kept running without catching up with the log")
			}
			st.View(func(tx store.ReadTx) {
				if w := tx.Task("web.1"); w.Status.State != api.TaskState_TASK_STATE_PENDING || w.Meta.Version != 2 {
					t.Errorf("web.1 was written (%v, %q) by a scheduler that had not caught up", w.Status.State, w.Status.Message)
				}
			})
		})
	}
}

func TestRunAssignsPendingTasks(t *testing.T) {
	st := storetest.New()
	create(t, st, objects(node("n1"), node("n2"), node("n3"))...)
	create(t, st, objects(tasks("web", 6)...)...)
	start(t, st)

	waitFor(t, st, "6 tasks assigned", func(tx store.ReadTx) bool { return total(assigned(tx, "web")) == 6 })
	st.View(func(tx store.ReadTx) {
		if got := assigned(tx, "web"); !maps.Equal(got, map[string]int{"n1": 2, "n2": 2, "n3": 2}) {
			t.Errorf("assigned %v, want 2 per node", got)
		}
		for _, tk := range tx.TasksByService("web") {
			if tk.Status.Message != assignedMessage {
				t.Errorf("task %s: message %q, want %q", tk.Id, tk.Status.Message, assignedMessage)
			}
		}
	})

	// Tasks created later are placed too, on the emptiest nodes.
	create(t, st, task("web", 7), task("web", 8), task("web", 9))
	waitFor(t, st, "9 tasks assigned", func(tx store.ReadTx) bool { return total(assigned(tx, "web")) == 9 })
	st.View(func(tx store.ReadTx) {
		if got := assigned(tx, "web"); !maps.Equal(got, map[string]int{"n1": 3, "n2": 3, "n3": 3}) {
			t.Errorf("assigned %v, want 3 per node", got)
		}
	})
}

func TestRunPlacesOnANodeThatBecomesReady(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withState(api.NodeState_NODE_STATE_DOWN)))
	create(t, st, objects(tasks("web", 2)...)...)
	start(t, st)

	const why = "no suitable node (1 node not available for new tasks)"
	waitFor(t, st, "the pending reason", func(tx store.ReadTx) bool {
		for _, tk := range tx.TasksByService("web") {
			if tk.Status.State != api.TaskState_TASK_STATE_PENDING || tk.Status.Message != why {
				return false
			}
		}
		return true
	})

	err := st.Update(context.Background(), func(tx store.Tx) error {
		n := tx.Node("n1")
		n.Status.State = api.NodeState_NODE_STATE_READY
		return tx.Update(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, "tasks assigned to n1", func(tx store.ReadTx) bool { return assigned(tx, "web")["n1"] == 2 })
}

func TestRunRetriesWhenRoomIsFreed(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withResources(1, 8*gib)))
	create(t, st, task("old", 1, running("n1"), reserving(1, 0)))
	create(t, st, task("web", 1, reserving(1, 0)))
	start(t, st)
	waitFor(t, st, "web.1 explained", func(tx store.ReadTx) bool {
		return tx.Task("web.1").Status.Message == "no suitable node (insufficient resources on 1 node)"
	})

	err := st.Update(context.Background(), func(tx store.Tx) error {
		old := tx.Task("old.1")
		old.Status.State = api.TaskState_TASK_STATE_COMPLETE
		return tx.Update(old)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, "web.1 assigned", func(tx store.ReadTx) bool { return assigned(tx, "web")["n1"] == 1 })
}

// A task told to stop keeps its node's room (reservations, host ports)
// until its agent reports it ended: its replacement must not be placed
// beside a task that still runs. The report alone frees the room and
// places the waiting task, with no tick.
func TestRunKeepsAStoppingTasksRoomUntilItEnds(t *testing.T) {
	const host, tcp = api.PortConfig_PUBLISH_MODE_HOST, api.PortConfig_PROTOCOL_TCP
	tests := []struct {
		name string
		node *api.Node
		uses func(*api.Task) // what old.1 and web.1 both need
		why  string
	}{
		{"reservations", node("n1", withResources(1, 8*gib)), reserving(1, 0),
			"no suitable node (insufficient resources on 1 node)"},
		{"host port", node("n1"), publishing(host, tcp, 8080),
			"no suitable node (host-mode port already in use on 1 node)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := storetest.New()
			create(t, st, tt.node)
			create(t, st, task("old", 1, running("n1"), tt.uses))
			create(t, st, task("web", 1, tt.uses))
			start(t, st)
			waitFor(t, st, "web.1 explained", func(tx store.ReadTx) bool { return tx.Task("web.1").Status.Message == tt.why })

			update := func(id string, change func(*api.Task)) {
				t.Helper()
				err := st.Update(context.Background(), func(tx store.Tx) error {
					tk := tx.Task(id)
					change(tk)
					return tx.Update(tk)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			// old.1 is told to stop; it still runs. A probe task created
			// after it is placed by a pass that saw the stop order.
			update("old.1", func(tk *api.Task) { tk.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN })
			create(t, st, task("probe", 1))
			waitFor(t, st, "probe.1 assigned", func(tx store.ReadTx) bool { return assigned(tx, "probe")["n1"] == 1 })
			st.View(func(tx store.ReadTx) {
				if w := tx.Task("web.1"); w.Status.State != api.TaskState_TASK_STATE_PENDING || w.Status.Message != tt.why {
					t.Errorf("web.1 is %v on %q (%q) while old.1 still runs there; want pending: %q",
						w.Status.State, w.NodeId, w.Status.Message, tt.why)
				}
			})

			update("old.1", func(tk *api.Task) { tk.Status.State = api.TaskState_TASK_STATE_SHUTDOWN })
			waitFor(t, st, "web.1 assigned", func(tx store.ReadTx) bool { return assigned(tx, "web")["n1"] == 1 })
		})
	}
}

func TestRunDoesNotOverwriteAChangedTask(t *testing.T) {
	st := storetest.New()
	// Room for two tasks: the pass places web.1 and web.2 and explains web.3.
	create(t, st, node("n1", withResources(2, 8*gib)))
	create(t, st, objects(tasks("web", 3, reserving(1, 0))...)...)

	var once sync.Once
	start(t, st, func(s *Scheduler) {
		s.beforeCommit = func() {
			once.Do(func() {
				// Between the plan and its commit, web.1 is told to stop.
				err := st.Update(context.Background(), func(tx store.Tx) error {
					tk := tx.Task("web.1")
					tk.DesiredState = api.TaskState_TASK_STATE_REMOVE
					return tx.Update(tk)
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
	})

	// web.1 keeps what its writer set; the room the pass meant for it goes
	// to web.3 on the next pass.
	waitFor(t, st, "web.2 and web.3 assigned", func(tx store.ReadTx) bool { return total(assigned(tx, "web")) == 2 })
	st.View(func(tx store.ReadTx) {
		w1 := tx.Task("web.1")
		if w1.NodeId != "" || w1.Status.State != api.TaskState_TASK_STATE_PENDING ||
			w1.DesiredState != api.TaskState_TASK_STATE_REMOVE {
			t.Errorf("web.1 was overwritten: node %q, state %v, desired %v", w1.NodeId, w1.Status.State, w1.DesiredState)
		}
		for _, id := range []string{"web.2", "web.3"} {
			if tk := tx.Task(id); tk.NodeId != "n1" {
				t.Errorf("%s on %q, want n1", id, tk.NodeId)
			}
		}
	})
}

// TestRunDoesNotPlaceOnANodeThatWentDownMeanwhile: a node that goes down
// between a pass's plan and its commit gets nothing; the task is planned
// again, on a node that is up.
func TestRunDoesNotPlaceOnANodeThatWentDownMeanwhile(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withResources(1, 8*gib)))
	create(t, st, objects(tasks("web", 1, reserving(1, 0))...)...)

	var once sync.Once
	start(t, st, func(s *Scheduler) {
		s.beforeCommit = func() {
			once.Do(func() {
				err := st.Update(context.Background(), func(tx store.Tx) error {
					n := tx.Node("n1")
					n.Status.State = api.NodeState_NODE_STATE_DOWN
					if err := tx.Update(n); err != nil {
						return err
					}
					return tx.Create(node("n2", withResources(1, 8*gib)))
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
	})
	waitFor(t, st, "web.1 on n2", func(tx store.ReadTx) bool { return assigned(tx, "web")["n2"] == 1 })
	st.View(func(tx store.ReadTx) {
		if n := assigned(tx, "web")["n1"]; n != 0 {
			t.Errorf("%d tasks placed on n1, which went down before the commit", n)
		}
	})
}

func TestRunWritesAPendingReasonOnlyWhenItChanges(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withState(api.NodeState_NODE_STATE_DOWN)))
	create(t, st, task("web", 1))

	passes := make(chan struct{}, 100)
	start(t, st, func(s *Scheduler) {
		s.tick = time.Millisecond // many passes with nothing new
		s.beforeCommit = func() {
			select {
			case passes <- struct{}{}:
			default:
			}
		}
	})
	for range 10 {
		<-passes
	}
	// Versions are raft indexes: one write after the create moved web.1
	// from the create's index (2) to 3, and no pass since wrote again.
	st.View(func(tx store.ReadTx) {
		tk := tx.Task("web.1")
		if tk.Status.Message != "no suitable node (1 node not available for new tasks)" {
			t.Errorf("message %q", tk.Status.Message)
		}
		if v := tk.Meta.Version; v != 3 {
			t.Errorf("web.1 at version %d after 10 passes, want 3 (one write)", v)
		}
	})
}

func TestRunReloadsAfterARestore(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1", withState(api.NodeState_NODE_STATE_DOWN)))
	start(t, st)

	// Another manager's state, as a raft snapshot would bring it.
	other := storetest.New()
	create(t, other, node("n1", withState(api.NodeState_NODE_STATE_DOWN)), node("n2"))
	create(t, other, objects(tasks("web", 2)...)...)
	snap, err := other.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Restore(other.AppliedIndex(), snap); err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, "tasks assigned to n2", func(tx store.ReadTx) bool { return assigned(tx, "web")["n2"] == 2 })
}

func TestRunPresetNode(t *testing.T) {
	st := storetest.New()
	create(t, st, node("n1"), node("n2", withAvailability(api.NodeAvailability_NODE_AVAILABILITY_PAUSE)))
	create(t, st, task("agent", 0, onNode("n1")), task("agent", 0, onNode("n2")))
	start(t, st)
	waitFor(t, st, "agent.n1 assigned and agent.n2 explained", func(tx store.ReadTx) bool {
		n1, n2 := tx.Task("agent.n1"), tx.Task("agent.n2")
		return n1.Status.State == api.TaskState_TASK_STATE_ASSIGNED && n1.NodeId == "n1" &&
			n2.Status.Message == "no suitable node (1 node not available for new tasks)"
	})
	err := st.Update(context.Background(), func(tx store.Tx) error {
		n := tx.Node("n2")
		n.Spec.Availability = api.NodeAvailability_NODE_AVAILABILITY_ACTIVE
		return tx.Update(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, "agent.n2 assigned", func(tx store.ReadTx) bool {
		return tx.Task("agent.n2").Status.State == api.TaskState_TASK_STATE_ASSIGNED
	})
}
