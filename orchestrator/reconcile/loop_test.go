package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/reconcile"
	"github.com/shoal/shoal/orchestrator/store"
)

// guard bounds every wait: reaching it is a failure, not a timing
// expectation.
const guard = 20 * time.Second

// fakeSource is a store whose watches the test feeds by hand: every
// ViewAndWatch makes a new buffered channel and hands it to the test.
type fakeSource struct {
	barrier error
	watches chan chan store.Batch
}

func newFakeSource() *fakeSource {
	return &fakeSource{watches: make(chan chan store.Batch, 4)}
}

func (f *fakeSource) ViewLinearizable(_ context.Context, fn func(store.ReadTx)) error {
	if f.barrier != nil {
		return f.barrier
	}
	fn(nil)
	return nil
}

func (f *fakeSource) ViewAndWatch(_ context.Context, fn func(store.ReadTx)) <-chan store.Batch {
	fn(nil)
	ch := make(chan store.Batch, 64)
	f.watches <- ch
	return ch
}

func (f *fakeSource) View(fn func(store.ReadTx)) { fn(nil) }

// nextWatch returns the channel of the Loop's latest ViewAndWatch.
func (f *fakeSource) nextWatch(t *testing.T) chan store.Batch {
	t.Helper()
	select {
	case ch := <-f.watches:
		return ch
	case <-time.After(guard):
		t.Fatal("the loop did not watch the store")
		return nil
	}
}

// recorder plays a reconciler and records every callback as a line.
type recorder struct {
	lines chan string
	// all is what MarkAll marks.
	all []string
	// block, when set, holds Reconcile of that ID until release closes.
	block   string
	release chan struct{}
	// fail makes Reconcile of that ID fail.
	fail string
}

func newRecorder(all ...string) *recorder {
	return &recorder{lines: make(chan string, 1024), all: all, release: make(chan struct{})}
}

func (r *recorder) record(format string, args ...any) {
	select {
	case r.lines <- fmt.Sprintf(format, args...):
	default: // a test that ticks fast drops what it does not read
	}
}

func (r *recorder) loop(src reconcile.Source, tick time.Duration, log *slog.Logger) *reconcile.Loop {
	return &reconcile.Loop{
		Name:  "test",
		Store: src,
		Log:   log,
		Tick:  tick,
		MarkAll: func(_ store.ReadTx, dirty reconcile.Dirty, full bool) {
			r.record("mark all full=%v", full)
			for _, id := range r.all {
				dirty.Mark(id)
			}
		},
		Note: func(batches []store.Batch, dirty reconcile.Dirty) {
			var idx []string
			for _, b := range batches {
				idx = append(idx, fmt.Sprint(b.Index))
				for _, ev := range b.Events {
					dirty.Mark(ev.Object.GetId())
				}
			}
			r.record("note %s", strings.Join(idx, ","))
		},
		Reconcile: func(ctx context.Context, id string) error {
			if id == r.block {
				<-r.release
			}
			r.record("reconcile %s", id)
			if id == r.fail {
				return errors.New("boom")
			}
			return nil
		},
		AfterRound: func() { r.record("round") },
	}
}

// expect reads the next lines and compares them with want.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	for range want {
		select {
		case l := <-r.lines:
			got = append(got, l)
		case <-time.After(guard):
			t.Fatalf("lines %q, then nothing; want %q", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

// run runs l until the test ends.
func run(t *testing.T, l *reconcile.Loop) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// batch is a committed transaction that touched the nodes named by ids.
func batch(index uint64, ids ...string) store.Batch {
	b := store.Batch{Index: index}
	for _, id := range ids {
		b.Events = append(b.Events, store.Event{Kind: store.KindNode, Object: &api.Node{Id: id}})
	}
	return b
}

func TestLoopStartsFromEverything(t *testing.T) {
	src, rec := newFakeSource(), newRecorder("b", "a")
	run(t, rec.loop(src, time.Hour, nil))
	src.nextWatch(t)
	rec.expect(t, "mark all full=true", "reconcile a", "reconcile b", "round")
}

func TestLoopCoalescesABurst(t *testing.T) {
	src, rec := newFakeSource(), newRecorder("a")
	rec.block = "a"
	run(t, rec.loop(src, time.Hour, nil))
	watch := src.nextWatch(t)
	// Three commits land while a round is under way: the next round
	// handles them together.
	watch <- batch(1, "x")
	watch <- batch(2, "y")
	watch <- batch(3, "x")
	close(rec.release)
	rec.expect(t, "mark all full=true", "reconcile a", "round", "note 1,2,3", "reconcile x", "reconcile y", "round")
}

func TestLoopReadsEverythingAgain(t *testing.T) {
	t.Run("after a restore", func(t *testing.T) {
		src, rec := newFakeSource(), newRecorder("a")
		run(t, rec.loop(src, time.Hour, nil))
		watch := src.nextWatch(t)
		rec.expect(t, "mark all full=true", "reconcile a", "round")
		watch <- batch(1, "x")
		watch <- store.Batch{Index: 2, Restored: true}
		watch <- batch(3, "y")
		// Note never sees the restored batch.
		rec.expect(t, "mark all full=true", "note 1,3", "reconcile a", "reconcile x", "reconcile y", "round")
	})
	t.Run("after the watch fell behind", func(t *testing.T) {
		src, rec := newFakeSource(), newRecorder("a")
		run(t, rec.loop(src, time.Hour, nil))
		watch := src.nextWatch(t)
		rec.expect(t, "mark all full=true", "reconcile a", "round")
		close(watch)
		watch = src.nextWatch(t)
		rec.expect(t, "mark all full=true", "reconcile a", "round")
		watch <- batch(1, "x")
		rec.expect(t, "note 1", "reconcile x", "round")
	})
}

func TestLoopTickMarksWithoutFull(t *testing.T) {
	src, rec := newFakeSource(), newRecorder("a")
	run(t, rec.loop(src, time.Millisecond, nil))
	src.nextWatch(t)
	rec.expect(t, "mark all full=true", "reconcile a", "round")
	rec.expect(t, "mark all full=false", "reconcile a", "round")
}

func TestLoopLogsAFailureAndMovesOn(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	src, rec := newFakeSource(), newRecorder("a", "b")
	rec.fail = "a"
	run(t, rec.loop(src, time.Hour, log))
	watch := src.nextWatch(t)
	rec.expect(t, "mark all full=true", "reconcile a", "reconcile b", "round")
	// a is not retried at once: it waits for its next event or the tick.
	watch <- batch(1, "b")
	rec.expect(t, "note 1", "reconcile b", "round")
	if got := buf.String(); !strings.Contains(got, "not reconciled") || !strings.Contains(got, "id=a") {
		t.Errorf("log %q does not name the failed ID", got)
	}
}

// TestLoopRetriesAFailureAtTheTick: an ID that failed is tried again at the
// next tick even when MarkAll no longer finds it (a deleted service whose
// tasks still need their desired REMOVE).
func TestLoopRetriesAFailureAtTheTick(t *testing.T) {
	src, rec := newFakeSource(), newRecorder()
	rec.fail = "gone"
	run(t, rec.loop(src, 300*time.Millisecond, nil))
	watch := src.nextWatch(t)
	rec.expect(t, "mark all full=true")
	watch <- batch(1, "gone")
	rec.expect(t, "note 1", "reconcile gone", "round")
	rec.expect(t, "mark all full=false", "reconcile gone", "round")
}

func TestLoopCatchUp(t *testing.T) {
	barrier := errors.New("no leader")
	src, rec := newFakeSource(), newRecorder()
	src.barrier = barrier
	l := rec.loop(src, time.Hour, nil)
	if err := l.Run(context.Background()); !errors.Is(err, barrier) || !strings.HasPrefix(err.Error(), "test: ") {
		t.Errorf("Run = %v, want the barrier's error, named", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Run(ctx); err != nil {
		t.Errorf("Run after its context ended = %v, want nil", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the loop's and the test's
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
