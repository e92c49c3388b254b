package raft

// This file checks that the store, replicated through this package, is
// linearizable while the group is under attack: concurrent clients read and
// write a few registers through random managers while a nemesis kills
// leaders (and restarts them from disk) and cuts links; the recorded history
// is then checked with porcupine against a sequential register model.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	raftpb "go.etcd.io/raft/v3/raftpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

const (
	// linRegisterID is the store object whose labels are the registers.
	linRegisterID = "lin-register"
	// linClients is how many clients run concurrently.
	linClients = 8
	// linFaultTime is how long the nemesis runs per cluster size; the
	// clients run a quiet second longer.
	linFaultTime = 8 * time.Second
	// linQuietTail is how long the clients keep going after the last fault
	// healed (and at least until a write succeeded), so the history ends
	// with the group healthy.
	linQuietTail = time.Second
	// linOpTimeout bounds one client operation.
	linOpTimeout = 1500 * time.Millisecond
	// linMinOps is the fewest completed operations a run must record to
	// mean anything.
	linMinOps = 200
	// linCheckTimeout bounds porcupine's search.
	linCheckTimeout = 2 * time.Minute
)

// linKeys are the registers: labels on the linRegisterID node object.
var linKeys = []string{"a", "b", "c"}

// errNoRegister is what a write's callback returns when its manager's store
// has not caught up to the register object yet: nothing was proposed.
var errNoRegister = errors.New("register object not in the local store yet")

// TestLinearizability: concurrent clients read and write while leaders are
// killed and links cut; the recorded history must be linearizable.
func TestLinearizability(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: each cluster size runs a ~10 s nemesis (kills, restarts, partitions) before the check")
	}
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			runLinearizability(t, size)
		})
	}
}

// linInput is one register operation; a read has Write false.
type linInput struct {
	Key   string
	Write bool
	Value string
}

// linModel is a key-value register per key, partitioned by key; a key's
// state is its value, "" before the first write.
var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(linInput).Key
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(byKey))
		for _, k := range slices.Sorted(maps.Keys(byKey)) {
			out = append(out, byKey[k])
		}
		return out
	},
	PartitionEvent: func(history []porcupine.Event) [][]porcupine.Event {
		// Return events carry no input; find their key by call ID.
		keyOf := map[int]string{}
		byKey := map[string][]porcupine.Event{}
		for _, e := range history {
			if e.Kind == porcupine.CallEvent {
				keyOf[e.Id] = e.Value.(linInput).Key
			}
			k := keyOf[e.Id]
			byKey[k] = append(byKey[k], e)
		}
		out := make([][]porcupine.Event, 0, len(byKey))
		for _, k := range slices.Sorted(maps.Keys(byKey)) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(linInput)
		if in.Write {
			return true, in.Value
		}
		return output.(string) == state.(string), state
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in, _ := input.(linInput)
		if in.Write {
			return fmt.Sprintf("put(%s, %q)", in.Key, in.Value)
		}
		return fmt.Sprintf("get(%s) -> %q", in.Key, output)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

// linCluster is a test cluster whose state machines are stores, with the
// table of running stores the clients pick from. Only the test goroutine
// (the nemesis) starts and stops nodes.
type linCluster struct {
	*testCluster
	start time.Time
	ids   []uint64 // raft ID per slot

	made *store.MemoryStore // the store newSM made last

	mu     sync.RWMutex
	stores []*store.MemoryStore // per slot; nil while the slot is stopped

	// lastWriteCall is the latest call time of a successful write.
	lastWriteCall atomic.Int64
}

func (lc *linCluster) now() int64 { return time.Since(lc.start).Nanoseconds() }

// startNode makes a new node in slot i with a fresh store wired to it, runs
// startFn on it, and offers the store to clients.
func (lc *linCluster) startNode(i int, startFn func(*Node) error) error {
	n := lc.create(i)
	s := lc.made
	s.SetProposer(n)
	if err := startFn(n); err != nil {
		return err
	}
	lc.mu.Lock()
	lc.stores[i] = s
	lc.mu.Unlock()
	return nil
}

// kill stops slot i abruptly; clients stop picking it first.
func (lc *linCluster) kill(i int) {
	lc.mu.Lock()
	lc.stores[i] = nil
	lc.mu.Unlock()
	lc.stop(i)
}

func (lc *linCluster) restartNode(i int) error {
	return lc.startNode(i, func(n *Node) error {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		return n.Restart(ctx)
	})
}

// pick returns a random running slot's store.
func (lc *linCluster) pick(r *rand.Rand) (int, *store.MemoryStore) {
	lc.mu.RLock()
	defer lc.mu.RUnlock()
	var up []int
	for i, s := range lc.stores {
		if s != nil {
			up = append(up, i)
		}
	}
	if len(up) == 0 {
		return -1, nil
	}
	i := up[r.IntN(len(up))]
	return i, lc.stores[i]
}

// leader returns the running slot that believes it leads in the highest
// term, or -1.
func (lc *linCluster) leader() int {
	best, term := -1, uint64(0)
	for _, i := range lc.running() {
		if st := lc.node(i).Status(); st.IsLeader && st.Term >= term {
			best, term = i, st.Term
		}
	}
	return best
}

// starve drops the leader's appends and snapshots to slot i and nothing
// else: i keeps its leader (heartbeats and read-index answers arrive) but
// falls behind, so only a read barrier that waits for the local apply keeps
// its reads fresh.
func (lc *linCluster) starve(i int) {
	id := lc.ids[i]
	lc.setDrop(func(_, to uint64, m *raftpb.Message) bool {
		return to == id && m != nil && (m.GetType() == raftpb.MsgApp || m.GetType() == raftpb.MsgSnap)
	})
}

// split cuts every link between the slots in side and the rest, both ways.
func (lc *linCluster) split(side []int) {
	in := map[uint64]bool{}
	for _, i := range side {
		in[lc.ids[i]] = true
	}
	lc.setDrop(func(from, to uint64, _ *raftpb.Message) bool { return in[from] != in[to] })
}

// linRecorder collects one client's operations.
type linRecorder struct {
	ops []porcupine.Operation
	// ambiguous are writes whose outcome is unknown; their Return is set
	// once the whole history is known.
	ambiguous []porcupine.Operation
	reads     int
	writes    int
	failed    map[string]int // definite failures and failed reads, by reason
}

func runLinearizability(t *testing.T, size int) {
	lc := startLinCluster(t, size)

	// Clients run until halt. The cleanup stops them before the cluster's
	// own cleanup (cleanups run last-in first-out) stops the nodes, on
	// every exit path.
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	halt := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(halt)
	var nextClientID atomic.Int64
	nextClientID.Store(linClients)
	recs := make([]*linRecorder, linClients)
	for c := range linClients {
		recs[c] = &linRecorder{failed: map[string]int{}}
		wg.Go(func() { lc.runClient(c, recs[c], &nextClientID, stop) })
	}

	nem := lc.runNemesis(t, linFaultTime)
	healedAt := lc.now()
	time.Sleep(linQuietTail)
	eventually(t, "a write to succeed after the last fault healed", func() bool {
		return lc.lastWriteCall.Load() > healedAt
	})
	halt()

	// Assemble the history. Ambiguous writes may have taken effect at any
	// time after their call, so they return after everything else.
	var (
		history, ambiguous []porcupine.Operation
		reads, writes      int
		failed             = map[string]int{}
		writesAfterKill    int
		lastReturn         int64
	)
	for _, rec := range recs {
		history = append(history, rec.ops...)
		ambiguous = append(ambiguous, rec.ambiguous...)
		reads += rec.reads
		writes += rec.writes
		for k, v := range rec.failed {
			failed[k] += v
		}
	}
	for _, op := range slices.Concat(history, ambiguous) {
		lastReturn = max(lastReturn, op.Return)
	}
	for _, op := range history {
		if op.Input.(linInput).Write && nem.firstKill >= 0 && op.Call > nem.firstKill {
			writesAfterKill++
		}
	}
	completed := len(history)
	for _, op := range ambiguous {
		op.Return = lastReturn + 1
		history = append(history, op)
	}
	t.Logf("history: %d completed ops (%d reads, %d writes), %d ambiguous writes; "+
		"not recorded (failed, no effect): %v; nemesis: %d kills, %d partitions",
		completed, reads, writes, len(ambiguous), failed, nem.kills, nem.partitions)
	switch {
	case completed < linMinOps:
		t.Fatalf("only %d operations completed, want at least %d for the check to mean anything", completed, linMinOps)
	case reads == 0 || writes == 0:
		t.Fatalf("%d reads and %d writes completed; want some of each", reads, writes)
	case nem.kills == 0 || nem.partitions == 0:
		t.Fatalf("the nemesis killed %d leaders and made %d partitions; want some of each", nem.kills, nem.partitions)
	case writesAfterKill == 0:
		t.Fatalf("no write succeeded after the first leader kill")
	}

	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(linModel, history, linCheckTimeout)
	t.Logf("porcupine: %v in %v", res, time.Since(checkStart).Round(time.Millisecond))
	if res != porcupine.Ok {
		info.AddAnnotations(nem.annotations)
		path := filepath.Join(os.TempDir(), fmt.Sprintf("shoal-linearizability-%dnodes-%d.html", size, time.Now().UnixNano()))
		if err := porcupine.VisualizePath(linModel, info, path); err != nil {
			t.Errorf("write the porcupine visualization: %v", err)
			path = "(not written)"
		}
		if res == porcupine.Unknown {
			t.Fatalf("porcupine could not decide within %v whether the history is linearizable; visualization: %s", linCheckTimeout, path)
		}
		t.Fatalf("history is not linearizable; visualization of the partial linearizations: %s", path)
	}
}

// startLinCluster starts a cluster of size nodes with stores as state
// machines and creates the register object.
func startLinCluster(t *testing.T, size int) *linCluster {
	cfg := testConfig()
	// Small snapshots, so restarts and lagging followers go through
	// snapshot restore as well as log replay.
	cfg.SnapshotInterval = 200
	cfg.LogEntriesForSlowFollowers = 50
	lc := &linCluster{
		testCluster: &testCluster{t: t, cfg: cfg, logger: testLogger(t)},
		start:       time.Now(),
		stores:      make([]*store.MemoryStore, size),
	}
	// startTestCluster makes the stores in slot order; wire each to its
	// node afterwards.
	var made []*store.MemoryStore
	lc.newSM = func() StateMachine {
		lc.made = store.New()
		made = append(made, lc.made)
		return lc.made
	}
	startTestCluster(lc.testCluster, size)
	for i := range size {
		made[i].SetProposer(lc.node(i))
		lc.stores[i] = made[i]
		lc.ids = append(lc.ids, lc.node(i).Status().RaftID)
	}
	lc.waitLeader()

	// The register object, with no labels: every register starts at "".
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := made[0].Update(ctx, func(tx store.Tx) error {
		return tx.Create(&api.Node{Id: linRegisterID, Spec: &api.NodeSpec{Annotations: &api.Annotations{Name: linRegisterID}}})
	})
	if err != nil {
		t.Fatalf("create the register object: %v", err)
	}
	return lc
}

// linNemesis is what the nemesis did.
type linNemesis struct {
	kills, partitions int
	firstKill         int64 // when the first kill began; -1 if none
	annotations       []porcupine.Annotation
}

// runNemesis attacks the group for runFor, one fault at a time, in turn:
// kill the leader and restart it from disk; starve a follower of appends;
// isolate the leader; split a random minority from the majority; isolate a
// follower and kill the leader; isolate a random node. Each fault
// holds 0.3–1 s, then heals, and the group gets 0.2–0.6 s of calm. Every
// cut but the starving drops both directions. It returns with every node
// running and every link up.
func (lc *linCluster) runNemesis(t *testing.T, runFor time.Duration) *linNemesis {
	t.Helper()
	size := len(lc.nodes)
	nem := &linNemesis{firstKill: -1}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(size)))
	hold := func() { time.Sleep(time.Duration(300+r.IntN(700)) * time.Millisecond) }
	calm := func() { time.Sleep(time.Duration(200+r.IntN(400)) * time.Millisecond) }
	note := func(start int64, what string) {
		nem.annotations = append(nem.annotations, porcupine.Annotation{
			Tag: "nemesis", Start: start, End: lc.now(), Description: what, BackgroundColor: "#f8d7da",
		})
		t.Logf("nemesis @%v: %s", time.Duration(start).Round(time.Millisecond), what)
	}
	kill := func(at int64, i int) {
		lc.kill(i)
		nem.kills++
		if nem.firstKill < 0 {
			nem.firstKill = at
		}
	}
	restart := func(i int) {
		if err := lc.restartNode(i); err != nil {
			t.Fatalf("restart slot %d from disk: %v", i, err)
		}
	}
	others := func(not ...int) []int {
		var out []int
		for i := range size {
			if !slices.Contains(not, i) {
				out = append(out, i)
			}
		}
		return out
	}
	deadline := time.Now().Add(runFor)
	for round := 0; time.Now().Before(deadline); round++ {
		// Most faults aim at the leader; give the group a moment to elect
		// one after the last fault.
		leader := -1
		for wait := time.Now().Add(2 * time.Second); leader < 0 && time.Now().Before(wait); {
			if leader = lc.leader(); leader < 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		at := lc.now()
		switch kind := round % 6; {
		case kind == 0 && leader >= 0:
			kill(at, leader)
			hold()
			restart(leader)
			note(at, fmt.Sprintf("killed leader slot %d, restarted it from disk", leader))
		case kind == 1 && leader >= 0:
			f := others(leader)[r.IntN(size-1)]
			lc.starve(f)
			nem.partitions++
			hold()
			lc.heal()
			note(at, fmt.Sprintf("dropped leader slot %d's appends to slot %d, healed", leader, f))
		case kind == 2 && leader >= 0:
			lc.split([]int{leader})
			nem.partitions++
			hold()
			lc.heal()
			note(at, fmt.Sprintf("isolated leader slot %d, healed", leader))
		case kind == 3:
			minority := r.Perm(size)[:(size-1)/2]
			lc.split(minority)
			nem.partitions++
			hold()
			lc.heal()
			note(at, fmt.Sprintf("split %v | %v (leader was %d), healed", minority, others(minority...), leader))
		case kind == 4 && leader >= 0:
			f := others(leader)[r.IntN(size-1)]
			lc.split([]int{f})
			nem.partitions++
			time.Sleep(100 * time.Millisecond)
			kill(at, leader)
			hold()
			restart(leader)
			time.Sleep(200 * time.Millisecond)
			lc.heal()
			note(at, fmt.Sprintf("isolated slot %d, killed leader slot %d, restarted it from disk, healed", f, leader))
		case kind == 5:
			i := r.IntN(size)
			lc.split([]int{i})
			nem.partitions++
			hold()
			lc.heal()
			note(at, fmt.Sprintf("isolated slot %d (leader was %d), healed", i, leader))
		default:
			note(at, "no leader to aim at; skipped a round")
		}
		calm()
	}
	return nem
}

// runClient issues random reads and writes through random managers until
// stop is closed.
func (lc *linCluster) runClient(c int, rec *linRecorder, nextID *atomic.Int64, stop <-chan struct{}) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(c)))
	id := c
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		slot, s := lc.pick(r)
		if s == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		key := linKeys[r.IntN(len(linKeys))]
		ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
		var res linOutcome
		if r.IntN(2) == 0 {
			res = lc.read(ctx, s, slot, id, key, rec)
		} else {
			res = lc.write(ctx, s, slot, id, key, fmt.Sprintf("c%d-%d", c, seq), rec)
		}
		cancel()
		switch res {
		case linAmbiguous:
			// This client's write stays open for the rest of the
			// history; go on under a new ID, as a new process.
			id = int(nextID.Add(1)) - 1
		case linFailed:
			// Mostly "no leader" during an election: do not spin.
			time.Sleep(time.Duration(5+r.IntN(20)) * time.Millisecond)
		}
	}
}

// linOutcome is how a client operation ended.
type linOutcome int

const (
	linOK        linOutcome = iota
	linFailed               // certainly had no effect; not recorded
	linAmbiguous            // a write that may or may not have applied
)

func (lc *linCluster) read(ctx context.Context, s *store.MemoryStore, slot, id int, key string, rec *linRecorder) linOutcome {
	call := lc.now()
	var value string
	err := s.ViewLinearizable(ctx, func(tx store.ReadTx) {
		n := tx.Node(linRegisterID)
		if n == nil {
			// Created before any client started: a read that misses it
			// is wrong, and the model will say so.
			value = "<no register object>"
			return
		}
		value = n.GetSpec().GetAnnotations().GetLabels()[key]
	})
	ret := lc.now()
	if err != nil {
		// A failed read had no effect.
		rec.failed["read: "+errReason(err)]++
		return linFailed
	}
	rec.reads++
	rec.ops = append(rec.ops, porcupine.Operation{
		ClientId: id, Input: linInput{Key: key}, Call: call, Output: value, Return: ret,
		Metadata: fmt.Sprintf("via slot %d", slot),
	})
	return linOK
}

// write sets key to value.
func (lc *linCluster) write(ctx context.Context, s *store.MemoryStore, slot, id int, key, value string, rec *linRecorder) linOutcome {
	call := lc.now()
	err := s.Update(ctx, func(tx store.Tx) error {
		n := tx.Node(linRegisterID)
		if n == nil {
			return errNoRegister
		}
		labels := n.GetSpec().GetAnnotations().GetLabels()
		if labels == nil {
			labels = map[string]string{}
			n.Spec.Annotations.Labels = labels
		}
		labels[key] = value
		return tx.Update(n)
	})
	ret := lc.now()
	op := porcupine.Operation{ClientId: id, Input: linInput{Key: key, Write: true, Value: value}, Call: call, Return: ret}
	switch {
	case err == nil:
		rec.writes++
		for prev := lc.lastWriteCall.Load(); call > prev && !lc.lastWriteCall.CompareAndSwap(prev, call); {
			prev = lc.lastWriteCall.Load()
		}
		op.Metadata = fmt.Sprintf("via slot %d", slot)
		rec.ops = append(rec.ops, op)
		return linOK
	case writeNotApplied(err):
		rec.failed["write: "+errReason(err)]++
		return linFailed
	default:
		op.Metadata = fmt.Sprintf("via slot %d; outcome unknown: %v", slot, err)
		rec.ambiguous = append(rec.ambiguous, op)
		return linAmbiguous
	}
}

// writeNotApplied reports whether a failed Update certainly changed nothing.
// Raft's ErrNoLeader and ErrProposalDropped come only from a proposal raft
// refused to append (or from the read barrier Update takes between
// attempts, after a conflict that applied nothing); ErrVersionConflict is
// the applied result of a transaction that changed nothing; the callback's
// own error comes before any proposal. Everything else — the context
// ending, the node stopping — may come after the entry was appended, so the
// write may yet apply.
func writeNotApplied(err error) bool {
	return errors.Is(err, ErrNoLeader) || errors.Is(err, ErrProposalDropped) ||
		errors.Is(err, store.ErrVersionConflict) || errors.Is(err, errNoRegister) ||
		errors.Is(err, store.ErrNoProposer)
}

// errReason names an error's kind for the counts in the log.
func errReason(err error) string {
	for _, known := range []error{ErrNoLeader, ErrProposalDropped, ErrStopped, store.ErrVersionConflict,
		errNoRegister, store.ErrNoProposer, context.DeadlineExceeded} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return err.Error()
}
