package restart

// This file owns the Supervisor: Restart, which applies the policy to one
// task inside the caller's transaction, and the holds of slots whose
// replacement waits for its delay, created by Run when they fall due.

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// HeldGrace is how long past its due time a hold still counts: long enough
// for Run to create the replacement, short enough that a hold Run never
// serves (Run not running, a failed commit) does not keep a slot empty.
const HeldGrace = 10 * time.Second

// maxStartsPerUpdate bounds the replacements created in one transaction.
const maxStartsPerUpdate = 2000

// Cause says why a task meant to run is being restarted.
type Cause int

const (
	// Ended: the task stopped on its own; the policy decides.
	Ended Cause = iota
	// NodeLost: its node is down, drained or gone; it is replaced at once
	// and the restart is not an attempt.
	NodeLost
)

func (c Cause) String() string {
	if c == NodeLost {
		return "node lost"
	}
	return "ended"
}

// Key names a slot: a replicated service's slot number, or the node of a
// global service's task (Slot 0).
type Key struct {
	ServiceID string
	Slot      uint64
	NodeID    string
}

// KeyOf is the slot t belongs to.
func KeyOf(t *api.Task) Key {
	if t.Slot != 0 {
		return Key{ServiceID: t.ServiceId, Slot: t.Slot}
	}
	return Key{ServiceID: t.ServiceId, NodeID: t.NodeId}
}

// Delayed is a replacement to create once its delay has passed. Hand it to
// Schedule after the transaction that stopped the old task commits.
type Delayed struct {
	Key Key
	Due time.Time
	// Replaces is the ID of the task it replaces.
	Replaces string
}

// Supervisor applies restart policies; one per manager, shared by the
// reconcilers. Its methods are safe for concurrent use.
type Supervisor struct {
	store *store.MemoryStore
	log   *slog.Logger
	now   func() time.Time

	mu   sync.Mutex
	held map[Key]Delayed
	wake chan struct{}
}

// NewSupervisor returns a Supervisor writing to s.
func NewSupervisor(s *store.MemoryStore, log *slog.Logger) *Supervisor {
	return &Supervisor{
		store: s,
		log:   log,
		now:   time.Now,
		held:  make(map[Key]Delayed),
		wake:  make(chan struct{}, 1),
	}
}

// Restart applies service's restart policy to t, a task of slot meant to
// run that ended (cause Ended) or whose node can no longer keep it
// (NodeLost). slot is every task of t's slot, t included, as read in tx.
//
// It stages in tx: t desired COMPLETE when the policy will not restart it;
// otherwise t desired SHUTDOWN and, unless another task already holds the
// slot, a replacement. The replacement is returned when it was created in
// tx; when it must wait for the policy's delay a Delayed is returned
// instead, for Schedule once tx has committed. A global task is replaced
// only on its own node, and only if the node takes new tasks.
//
// A task no longer meant to run (already handled) is left alone, so asking
// twice is harmless.
func (s *Supervisor) Restart(tx store.Tx, service *api.Service, slot reconcile.Slot, t *api.Task, cause Cause) (*api.Task, *Delayed, error) {
	if !reconcile.MeantToRun(t) {
		return nil, nil, nil
	}
	now := s.now()
	policy := service.GetSpec().GetTask().GetRestart()
	if cause == Ended && !(conditionAllows(policy, t.GetStatus().GetState()) && attemptsLeft(policy, slot, t, now)) {
		t.DesiredState = api.TaskState_TASK_STATE_COMPLETE
		if err := tx.Update(t); err != nil {
			return nil, nil, fmt.Errorf("complete task %s: %w", t.Id, err)
		}
		s.log.Debug("task not restarted", "task", reconcile.TaskName(t), "task_id", t.Id,
			"state", t.GetStatus().GetState(), "condition", policy.GetCondition())
		return nil, nil, nil
	}
	t.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
	if err := tx.Update(t); err != nil {
		return nil, nil, fmt.Errorf("shut down task %s: %w", t.Id, err)
	}
	if othersHold(slot, t.Id) {
		return nil, nil, nil
	}
	var nodeID string
	if t.Slot == 0 {
		nodeID = t.NodeId
		if !reconcile.NodeTakesNewTasks(tx.Node(nodeID)) {
			return nil, nil, nil
		}
	}
	if d := Delay(policy); cause == Ended && d > 0 {
		return nil, &Delayed{Key: KeyOf(t), Due: now.Add(d), Replaces: t.Id}, nil
	}
	n := reconcile.NewTask(service, t.Slot, nodeID, now)
	if err := tx.Create(n); err != nil {
		return nil, nil, fmt.Errorf("create replacement of task %s: %w", t.Id, err)
	}
	s.log.Debug("task restarted", "task", reconcile.TaskName(t), "task_id", t.Id, "replacement", n.Id, "cause", cause)
	return n, nil, nil
}

// othersHold reports whether a task of slot other than id holds it.
func othersHold(slot reconcile.Slot, id string) bool {
	for _, o := range slot {
		if o.Id != id && reconcile.OccupiesSlot(o) {
			return true
		}
	}
	return false
}

// Schedule holds the slots of ds until their replacements are created. A
// slot already held keeps its earlier due time.
func (s *Supervisor) Schedule(ds ...*Delayed) {
	s.mu.Lock()
	added := false
	for _, d := range ds {
		if d == nil {
			continue
		}
		if _, ok := s.held[d.Key]; !ok {
			s.held[d.Key] = *d
			added = true
		}
	}
	s.mu.Unlock()
	if added {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Cancel drops the holds of keys (slots removed, nodes lost).
func (s *Supervisor) Cancel(keys ...Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.held, k)
	}
}

// Held reports whether k waits for a delayed replacement; reconcilers
// count such a slot as occupied.
func (s *Supervisor) Held(k Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.held[k]
	return ok && s.now().Before(d.Due.Add(HeldGrace))
}

// Run creates delayed replacements as they fall due, until ctx ends. Holds
// left when it returns are dropped: they do not outlive leadership.
func (s *Supervisor) Run(ctx context.Context) error {
	defer func() {
		s.mu.Lock()
		clear(s.held)
		s.mu.Unlock()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := s.due()
		if len(due) > 0 {
			s.start(ctx, due)
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(s.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// due returns the holds whose time has come (at most one transaction's
// worth, oldest first) and the earliest due time of the rest.
func (s *Supervisor) due() ([]Delayed, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var due []Delayed
	var next time.Time
	for _, d := range s.held {
		if !d.Due.After(now) {
			due = append(due, d)
		} else if next.IsZero() || d.Due.Before(next) {
			next = d.Due
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Due.Before(due[j].Due) })
	if len(due) > maxStartsPerUpdate {
		due = due[:maxStartsPerUpdate]
	}
	return due, next
}

// start creates the replacements of due in one transaction and drops their
// holds, whether or not the commit succeeded: a slot left empty is filled
// by its reconciler.
func (s *Supervisor) start(ctx context.Context, due []Delayed) {
	created := 0
	err := s.store.Update(ctx, func(tx store.Tx) error {
		created = 0
		byService := make(map[string][]Delayed)
		for _, d := range due {
			byService[d.Key.ServiceID] = append(byService[d.Key.ServiceID], d)
		}
		now := s.now()
		for id, ds := range byService {
			n, err := startService(tx, id, ds, now)
			if err != nil {
				return err
			}
			created += n
		}
		return nil
	})
	s.mu.Lock()
	for _, d := range due {
		if cur, ok := s.held[d.Key]; ok && cur.Due.Equal(d.Due) {
			delete(s.held, d.Key)
		}
	}
	s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("delayed restarts not created; reconcilers will fill the slots", "count", len(due), "err", err)
		}
		return
	}
	s.log.Debug("delayed restarts", "due", len(due), "created", created)
}

// startService creates the replacements ds of one service's slots that are
// still empty and still wanted.
func startService(tx store.Tx, serviceID string, ds []Delayed, now time.Time) (int, error) {
	svc := tx.Service(serviceID)
	if svc == nil {
		return 0, nil
	}
	occupied := make(map[Key]bool)
	for _, t := range tx.SharedTasksByService(serviceID) {
		if reconcile.OccupiesSlot(t) {
			occupied[KeyOf(t)] = true
		}
	}
	replicas := svc.GetSpec().GetReplicated().GetReplicas()
	created := 0
	for _, d := range ds {
		if occupied[d.Key] {
			continue
		}
		var t *api.Task
		switch {
		case d.Key.Slot != 0 && reconcile.IsReplicated(svc):
			if uint64(len(occupied)) >= replicas {
				continue
			}
			t = reconcile.NewTask(svc, d.Key.Slot, "", now)
		case d.Key.Slot == 0 && reconcile.IsGlobal(svc):
			if !reconcile.NodeTakesNewTasks(tx.Node(d.Key.NodeID)) {
				continue
			}
			t = reconcile.NewTask(svc, 0, d.Key.NodeID, now)
		default:
			continue
		}
		if err := tx.Create(t); err != nil {
			return created, fmt.Errorf("create delayed replacement of task %s: %w", d.Replaces, err)
		}
		occupied[d.Key] = true
		created++
	}
	return created, nil
}
