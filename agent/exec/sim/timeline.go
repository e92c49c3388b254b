package sim

// This file owns the executor's clock: every delayed step of every
// simulated task (a start that takes time, an exit after a run time) is an
// event on one heap, fired by one goroutine that runs only while events
// are pending — thousands of tasks cost one timer, not thousands.

import (
	"container/heap"
	"sync"
	"time"
)

type event struct {
	at time.Time
	fn func()
}

type eventHeap []event

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*h = old[:len(old)-1]
	return e
}

// timeline runs functions at given times, in time order.
type timeline struct {
	mu      sync.Mutex
	events  eventHeap
	running bool          // the firing goroutine is live
	sooner  chan struct{} // signalled when an event earlier than the rest is added
}

func newTimeline() *timeline {
	return &timeline{sooner: make(chan struct{}, 1)}
}

// after runs fn once d has passed, on the timeline's goroutine: fn must not
// block.
func (tl *timeline) after(d time.Duration, fn func()) {
	at := time.Now().Add(d)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	heap.Push(&tl.events, event{at: at, fn: fn})
	if !tl.running {
		tl.running = true
		go tl.loop()
		return
	}
	if tl.events[0].at.Equal(at) {
		select {
		case tl.sooner <- struct{}{}:
		default:
		}
	}
}

func (tl *timeline) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		tl.mu.Lock()
		if len(tl.events) == 0 {
			tl.running = false
			tl.mu.Unlock()
			return
		}
		wait := time.Until(tl.events[0].at)
		if wait <= 0 {
			e := heap.Pop(&tl.events).(event)
			tl.mu.Unlock()
			e.fn()
			continue
		}
		tl.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-tl.sooner:
		}
	}
}
