package main

// This file owns the node's list of known managers, kept on disk so a
// restarted worker finds the cluster again.

import (
	"encoding/json"
	"os"
	"slices"
	"sync"
)

type remotes struct {
	mu    sync.Mutex
	path  string
	addrs []string
}

func newRemotes(path, seed string) *remotes {
	r := &remotes{path: path}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &r.addrs) // a damaged file only loses hints
	}
	if seed != "" && !slices.Contains(r.addrs, seed) {
		r.addrs = append(r.addrs, seed)
		// On disk at once: the managers' list a session brings may be just this one, which set
		// would then see as no change, and a restart without --join-addr would know no manager.
		r.save()
	}
	return r
}

func (r *remotes) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.addrs)
}

func (r *remotes) add(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.addrs, addr) {
		r.addrs = append(r.addrs, addr)
		r.save()
	}
}

func (r *remotes) set(addrs []string) {
	if len(addrs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sorted := slices.Sorted(slices.Values(addrs))
	if slices.Equal(sorted, r.addrs) {
		return
	}
	r.addrs = sorted
	r.save()
}

// save writes the list; r.mu is held. Failing to save only loses a hint.
func (r *remotes) save() {
	b, err := json.Marshal(r.addrs)
	if err != nil {
		return
	}
	tmp := r.path + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, r.path)
	}
}
