package allocator

import "time"

// SetClock replaces the allocator's clock (tests of ip_hold and cooldowns).
func (a *Allocator) SetClock(clock func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clock = clock
}
