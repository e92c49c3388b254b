package dispatcher

// QueuedTaskStates is how many reported task states wait for the next
// flush; tests use it to know every report of a burst is queued.
func (d *Dispatcher) QueuedTaskStates() int {
	d.mu.Lock()
	q := d.statuses
	d.mu.Unlock()
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}
