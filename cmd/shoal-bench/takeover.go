package main

// This file owns the takeover half of `shoal-bench allocator`: waiting until the cluster is
// quiet, stopping its leader as a crash would, and reading the new leader's allocator; and the
// log handler that times the takeover by the managers' own log lines.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/manager/managertest"
	"github.com/shoal/shoal/orchestrator/store"
)

// The allocator's and the manager's log lines the takeover is timed by (orchestrator/allocator
// rebuild.go, orchestrator/manager leader.go).
const (
	msgRebuilt = "allocator state rebuilt from the replicated records"
	msgLeader  = "became leader; leader components started"
)

// takeover is one leader kill.
type takeover struct {
	killedIndex int
	elected     time.Duration // kill → a survivor becomes leader
	running     time.Duration // kill → the new leader's allocator has rebuilt and runs
	rebuild     time.Duration // the new leader's rebuild_duration
	answered    time.Duration // kill → GetAllocatorState answered by the new leader
	bindings    int
	tasks       int
	same        bool // the rebuilt state is byte for byte the old leader's
	inconsist   int
	elections   int // leaders elected from the kill to the answer (1 unless the new leader lost it again)
	dumpBytes   int // the state dumps in the answer
}

// quiet is how long the leader and its term must stay the same, with every manager caught up,
// before a kill: on a loaded machine a cluster holding this much may still be electing.
const quiet = 5 * time.Second

// killLeader waits until the cluster is quiet, reads the leader's allocator state, stops the
// leader as a crash would, and times the takeover; then starts the stopped manager again.
func killLeader(ctx context.Context, c *managertest.Cluster, marks *logMarks, o allocatorOptions) (takeover, error) {
	var tk takeover
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var (
		leader *managertest.Member
		before *api.GetAllocatorStateResponse
	)
	for before == nil {
		var err error
		if leader, err = quietLeader(wctx, c); err != nil {
			return tk, err
		}
		before, err = allocatorState(wctx, leader)
		if err != nil && wctx.Err() != nil {
			return tk, fmt.Errorf("the old leader's allocator state: %w", err)
		}
		// Reading tens of MB of state may have cost the leader its term: then the kill would
		// not be what makes the takeover, so wait for quiet again.
		if now, _ := agreedLeader(c); before != nil && now != leader {
			before = nil
		}
	}
	tk.killedIndex = leader.Index

	killed := time.Now()
	leader.Stop()
	var (
		next  *managertest.Member
		after *api.GetAllocatorStateResponse
	)
	for after == nil {
		for _, m := range c.Members() {
			if m == leader || m.Manager() == nil {
				continue
			}
			if st, err := allocatorState(wctx, m); err == nil {
				next, after, tk.answered = m, st, time.Since(killed)
				break
			}
		}
		if after != nil {
			break
		}
		select {
		case <-wctx.Done():
			return tk, fmt.Errorf("no new leader's allocator answered: %w", wctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	tk.rebuild = after.GetRebuildDuration().AsDuration()
	tk.inconsist = len(after.GetInconsistencies())
	tk.same = after.GetRebuiltJson() == before.GetStateJson()
	tk.bindings = strings.Count(after.GetRebuiltJson(), `"key":`)
	tk.dumpBytes = len(after.GetStateJson()) + len(after.GetRebuiltJson())
	next.Store().View(func(tx store.ReadTx) {
		for _, svc := range tx.Services() {
			tk.tasks += len(tx.SharedTasksByService(svc.Id)) // no clones: this manager leads
		}
	})
	tk.elections = marks.count(msgLeader, killed)
	if at, ok := marks.last(msgLeader, next.Index, killed); ok {
		tk.elected = at.Sub(killed)
	}
	if at, ok := marks.last(msgRebuilt, next.Index, killed); ok {
		tk.running = at.Sub(killed)
	} else {
		tk.running = tk.answered // the log line changed: the answer bounds it from above
	}
	if err := c.Restart(wctx, leader); err != nil {
		return tk, fmt.Errorf("restart manager %d: %w", leader.Index, err)
	}
	return tk, nil
}

// allocatorState is m's GetAllocatorState answer.
func allocatorState(ctx context.Context, m *managertest.Member) (*api.GetAllocatorStateResponse, error) {
	ctl, closeCtl, err := control(m)
	if err != nil {
		return nil, err
	}
	defer closeCtl()
	return ctl.GetAllocatorState(ctx, &api.GetAllocatorStateRequest{})
}

// quietLeader waits until every manager runs, agrees on the leader and the term, has applied
// the leader's log, and none of that has changed for the quiet period. (A deposed leader whose
// Ready loop is busy may still say it leads: asking one member is not enough.)
func quietLeader(ctx context.Context, c *managertest.Cluster) (*managertest.Member, error) {
	var (
		last  string
		since time.Time
	)
	for {
		l, state := agreedLeader(c)
		if state != last {
			last, since = state, time.Now()
		}
		if l != nil && time.Since(since) >= quiet {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the cluster never stayed quiet for %s (last: %s): %w", quiet, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// agreedLeader is the leader every running manager names, at one term, once each has applied
// the leader's log; nil otherwise. state describes what the managers say.
func agreedLeader(c *managertest.Cluster) (leader *managertest.Member, state string) {
	var (
		terms, leaders = map[uint64]bool{}, map[uint64]bool{}
		applied        []uint64
		parts          []string
	)
	for _, m := range c.Members() {
		mgr := m.Manager()
		if mgr == nil {
			return nil, fmt.Sprintf("manager %d stopped", m.Index)
		}
		st := mgr.Raft().Status()
		terms[st.Term], leaders[st.LeaderID] = true, true
		applied = append(applied, mgr.Store().AppliedIndex())
		if st.IsLeader && st.RaftID == st.LeaderID {
			leader = m
		}
		parts = append(parts, fmt.Sprintf("m%d term %d leader %x", m.Index, st.Term, st.LeaderID))
	}
	state = strings.Join(parts, ", ")
	if len(terms) != 1 || len(leaders) != 1 || leaders[0] || leader == nil || slices.Min(applied) < slices.Max(applied) {
		return nil, state
	}
	return leader, state
}

// logMarks is a slog handler that keeps the time of the log lines the takeover is timed by,
// per manager (the "manager" attribute managertest gives each manager's logger), and hands
// every line to out (--log), when set.
type logMarks struct {
	mu      *sync.Mutex
	manager int
	seen    *[]logMark
	out     slog.Handler
}

type logMark struct {
	msg     string
	manager int
	at      time.Time
}

func newLogMarks(out slog.Handler) *logMarks {
	return &logMarks{mu: &sync.Mutex{}, manager: -1, seen: &[]logMark{}, out: out}
}

func (h *logMarks) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *logMarks) Handle(ctx context.Context, r slog.Record) error {
	if h.out != nil {
		if err := h.out.Handle(ctx, r); err != nil {
			return err
		}
	}
	if r.Message != msgRebuilt && r.Message != msgLeader {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.seen = append(*h.seen, logMark{r.Message, h.manager, r.Time})
	return nil
}

func (h *logMarks) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	if c.out != nil {
		c.out = c.out.WithAttrs(attrs)
	}
	for _, a := range attrs {
		if a.Key == "manager" && a.Value.Kind() == slog.KindInt64 {
			c.manager = int(a.Value.Int64())
		}
	}
	return &c
}

func (h *logMarks) WithGroup(name string) slog.Handler {
	c := *h
	if c.out != nil {
		c.out = c.out.WithGroup(name)
	}
	return &c
}

// last is when manager last logged msg after since.
func (h *logMarks) last(msg string, manager int, since time.Time) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var at time.Time
	for _, m := range *h.seen {
		if m.msg == msg && m.manager == manager && m.at.After(since) {
			at = m.at
		}
	}
	return at, !at.IsZero()
}

// count is how many times any manager logged msg after since.
func (h *logMarks) count(msg string, since time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range *h.seen {
		if m.msg == msg && m.at.After(since) {
			n++
		}
	}
	return n
}
