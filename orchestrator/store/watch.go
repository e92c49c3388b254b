package store

// This file owns watching: every applied transaction is published as one
// Batch to every watcher, in log order, through a queue per watcher so a
// slow reader never blocks Apply.

import (
	"context"
	"sync"

	"github.com/shoal/shoal/api"
)

// maxQueuedBatches bounds a watcher's backlog. A watcher that falls this far
// behind is closed; it must view the store again and re-watch.
const maxQueuedBatches = 1 << 16

// Event is one object's change. Object is the new state (the removed state
// for a delete) and Old the previous one, nil for a create. Both are shared
// with the store: treat them as read-only.
type Event struct {
	Action api.StoreAction_Kind
	Kind   Kind
	Object Object
	Old    Object
}

// Batch is what one committed transaction changed. Restored means the whole
// state was replaced from a raft snapshot: a watcher must read it again.
type Batch struct {
	Index    uint64
	Events   []Event
	Restored bool
}

type watcher struct {
	mu     sync.Mutex
	queue  []Batch
	signal chan struct{}
	closed bool
}

// Watch returns the batches applied from now on. The channel closes when
// ctx ends or the watcher fell too far behind.
func (s *MemoryStore) Watch(ctx context.Context) <-chan Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watchLocked(ctx)
}

// ViewAndWatch runs fn on the current state and returns the batches applied
// after it, with no gap and no overlap between the two.
func (s *MemoryStore) ViewAndWatch(ctx context.Context, fn func(ReadTx)) <-chan Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&readTx{s: s})
	return s.watchLocked(ctx)
}

func (s *MemoryStore) watchLocked(ctx context.Context) <-chan Batch {
	w := &watcher{signal: make(chan struct{}, 1)}
	s.watchers[w] = struct{}{}
	out := make(chan Batch)
	go func() {
		defer close(out)
		defer s.unwatch(w)
		for {
			w.mu.Lock()
			if w.closed {
				w.mu.Unlock()
				return
			}
			pending := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, b := range pending {
				select {
				case out <- b:
				case <-ctx.Done():
					return
				}
			}
			if len(pending) > 0 {
				continue
			}
			select {
			case <-w.signal:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (s *MemoryStore) unwatch(w *watcher) {
	s.mu.Lock()
	delete(s.watchers, w)
	s.mu.Unlock()
}

// publish queues b for every watcher; s.mu is held.
func (s *MemoryStore) publish(b Batch) {
	for w := range s.watchers {
		w.mu.Lock()
		if len(w.queue) >= maxQueuedBatches {
			w.closed = true
			w.queue = nil
		} else if !w.closed {
			w.queue = append(w.queue, b)
		}
		w.mu.Unlock()
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
}
