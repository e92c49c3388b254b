package allocator

// This file owns the store check that keeps each address of a network to one binding, whatever
// writes it: two leaders of overlapping terms, or a bug, cannot commit a second holder.

import (
	"fmt"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// CheckBindingConflicts is the store check (see store.CheckOf) that refuses a binding write
// taking an address another binding of the network holds. Only an address the write takes anew
// is checked, so the control API's release request, which changes no address, costs nothing.
// The manager gives it to store.New, so every manager runs it on every entry, replayed ones
// included. It came after ChecksVersion 1 without a bump: no entry written before it held a
// binding.
func CheckBindingConflicts(after store.ReadTx, old, b *api.IPBinding) error {
	if old != nil && old.NetworkId == b.NetworkId && old.Address == b.Address {
		return nil
	}
	for _, o := range after.BindingsByAddress(b.NetworkId, b.Address) {
		if o.Id != b.Id {
			return fmt.Errorf("address %s on network %s is bound to %s already; binding %s refused", b.Address, b.NetworkId, KeyOf(o), KeyOf(b))
		}
	}
	return nil
}
