package allocator

// This file owns the allocator's canonical dump: everything that decides its future answers (the
// pools and the bindings), as JSON, so two allocators — the old leader's and the new one's — can
// be compared byte for byte.

import (
	"encoding/json"
	"sort"
	"time"
)

// Dump is the allocator's state in a canonical form.
type Dump struct {
	Networks []NetworkDump `json:"networks"`
	Bindings []BindingDump `json:"bindings"`
}

// NetworkDump is one network's pools.
type NetworkDump struct {
	ID      string       `json:"id"`
	Subnets []SubnetDump `json:"subnets"`
}

// SubnetDump is one pool: its allocated addresses, the addresses cooling down with their release
// times, and the serial cursor.
type SubnetDump struct {
	Subnet    string        `json:"subnet"`
	Allocated []string      `json:"allocated"`
	Cooling   []CoolingDump `json:"cooling,omitempty"`
	Last      string        `json:"last,omitempty"`
}

// CoolingDump is an address cooling down.
type CoolingDump struct {
	Address    string    `json:"address"`
	ReleasedAt time.Time `json:"released_at"`
}

// BindingDump is one binding.
type BindingDump struct {
	Key       string    `json:"key"`
	ID        string    `json:"id"`
	Address   string    `json:"address"`
	Task      string    `json:"task,omitempty"`
	Pinned    bool      `json:"pinned,omitempty"`
	HeldSince time.Time `json:"held_since,omitzero"`
	Release   bool      `json:"release_requested,omitempty"`
}

// State returns the allocator's canonical dump, and whether it is running (has rebuilt).
func (a *Allocator) State() ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stateLocked(), a.running
}

func (a *Allocator) stateLocked() []byte {
	var d Dump
	for id, np := range a.nets {
		nd := NetworkDump{ID: id}
		for _, sp := range np.subnets {
			st := sp.pool.State()
			sd := SubnetDump{Subnet: sp.prefix.String(), Allocated: make([]string, 0, len(st.Allocated))}
			for _, x := range st.Allocated {
				sd.Allocated = append(sd.Allocated, x.String())
			}
			for _, c := range st.Cooling {
				sd.Cooling = append(sd.Cooling, CoolingDump{c.Addr.String(), c.At.UTC()})
			}
			if st.Last.IsValid() {
				sd.Last = st.Last.String()
			}
			nd.Subnets = append(nd.Subnets, sd)
		}
		d.Networks = append(d.Networks, nd)
	}
	sort.Slice(d.Networks, func(i, j int) bool { return d.Networks[i].ID < d.Networks[j].ID })
	for _, m := range a.bindings.bySvc {
		for k, b := range m {
			bd := BindingDump{Key: k.String(), ID: b.id, Address: b.addr.String(), Task: b.task, Pinned: b.pinned, Release: b.releaseRequested}
			if !b.heldSince.IsZero() {
				bd.HeldSince = b.heldSince.UTC()
			}
			d.Bindings = append(d.Bindings, bd)
		}
	}
	sort.Slice(d.Bindings, func(i, j int) bool { return d.Bindings[i].Key < d.Bindings[j].Key })
	out, err := json.Marshal(d)
	if err != nil {
		return []byte(`{"error":` + `"` + err.Error() + `"}`)
	}
	return out
}
