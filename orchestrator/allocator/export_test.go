package allocator

import "time"

// SetClock replaces the allocator's clock (tests of ip_hold and cooldowns).
func (a *Allocator) SetClock(clock func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clock = clock
}

// Stale reports whether the allocator's memory may differ from the records (a commit failed).
func (a *Allocator) Stale() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stale
}
