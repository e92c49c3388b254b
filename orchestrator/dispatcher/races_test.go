package dispatcher_test

// Tests of races and edge cases the dispatcher once got wrong: a node that
// reconnects while it is being declared down, changes committed right as
// the dispatcher starts, and a heartbeat period too small for a ticker.

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

// A node whose session expires and that reconnects while the dispatcher is
// still recording it down must not stay down for as long as its new session
// lives: the down record is then stale.
func TestReconnectDuringExpiryLeavesNodeReady(t *testing.T) {
	e := newTestEnv(t, shortPeriod)
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.run(t)

	old := e.session(t, node1, "192.0.2.1:5000", desc1)
	old.recv(t)

	// Hold the first DOWN record of node1 until the node has reconnected.
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	e.proposer.setHold(func(txn *api.StoreTransaction) <-chan struct{} {
		for _, a := range txn.Actions {
			if n := a.GetNode(); n.GetId() == node1 && n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN {
				var wait <-chan struct{}
				once.Do(func() { held <- struct{}{}; wait = release })
				return wait
			}
		}
		return nil
	})
	releaseHeld := sync.OnceFunc(func() { close(release) })
	defer releaseHeld()
	select {
	case <-held:
	case <-time.After(waitFor):
		t.Fatal("the silent node was never marked down")
	}
	old.end(t)

	// The node reconnects and heartbeats while its DOWN record is on the
	// way through raft.
	s := e.session(t, node1, "192.0.2.1:5000", desc1)
	id := s.recv(t).SessionId
	ctx := e.nodeContext(t, t.Context(), node1, "192.0.2.1:5000")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(shortPeriod / 10):
			}
			if _, err := e.d.Heartbeat(ctx, &api.HeartbeatRequest{SessionId: id}); err != nil {
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)

	releaseHeld()
	select {
	case <-e.proposer.heldApplied:
	case <-time.After(waitFor):
		t.Fatal("the held DOWN record was never applied")
	}
	eventually(t, "the connected node is READY again", func() bool {
		return e.node(node1).Status.GetState() == api.NodeState_NODE_STATE_READY
	})
	if _, err := e.d.Heartbeat(ctx, &api.HeartbeatRequest{SessionId: id}); err != nil {
		t.Errorf("the new session is gone: %v", err)
	}
}

// gateHandler is a log handler that stops the logging goroutine at the first
// record with message msg until release closes.
type gateHandler struct {
	msg     string
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *gateHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *gateHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() {
			close(h.reached)
			<-h.release
		})
	}
	return nil
}

func (h *gateHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *gateHandler) WithGroup(string) slog.Handler      { return h }

// A session opened as the dispatcher starts must hear of its node's changes
// at once, not at the next periodic refresh (3 heartbeat periods later).
func TestChangeRightAfterStartIsSent(t *testing.T) {
	// The gap is widened by stopping Run at its "dispatcher started" log
	// line, which lies between the two.
	gate := &gateHandler{msg: "dispatcher started", reached: make(chan struct{}), release: make(chan struct{})}
	releaseGate := sync.OnceFunc(func() { close(gate.release) })
	e := newTestEnvWithLogger(t, longPeriod, slog.New(gate))
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_DOWN))
	e.run(t)
	defer releaseGate()
	select {
	case <-gate.reached:
	case <-time.After(waitFor):
		t.Fatal("Run never logged that it started")
	}

	s := e.session(t, node1, "192.0.2.1:5000", desc1)
	if msg := s.recv(t); msg.DesiredRole != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatalf("first message role %v, want worker", msg.DesiredRole)
	}
	e.setDesiredRole(t, node1, api.NodeRole_NODE_ROLE_MANAGER)
	releaseGate()
	if msg := s.recv(t); msg.DesiredRole != api.NodeRole_NODE_ROLE_MANAGER {
		t.Errorf("message after the change says role %v, want manager", msg.DesiredRole)
	}
}

// The cluster spec accepts any positive heartbeat period (shoald checks
// only > 0); Run must not crash the manager on a tiny one.
func TestTinyHeartbeatPeriodDoesNotCrashRun(t *testing.T) {
	e := newTestEnv(t, time.Nanosecond)
	// node1 was up under the previous leader: Run's first tick declares
	// it down, which shows Run got past making its ticker.
	e.addNodes(t, newNode(node1, api.NodeState_NODE_STATE_READY))
	ctx, cancel := context.WithCancel(context.Background())
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		if err := e.d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	defer func() {
		cancel()
		<-panicked
	}()
	eventually(t, "Run ticks or panics", func() bool {
		select {
		case p := <-panicked:
			panicked <- p
			return true
		default:
			return e.node(node1).Status.GetState() == api.NodeState_NODE_STATE_DOWN
		}
	})
	select {
	case p := <-panicked:
		panicked <- p
		if p != nil {
			t.Fatalf("Run panicked: %v", p)
		}
		t.Fatal("Run returned before its context ended")
	default:
	}
}
