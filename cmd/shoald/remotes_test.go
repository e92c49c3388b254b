package main

import (
	"path/filepath"
	"slices"
	"testing"
)

// A node that joined through a manager finds it again after a restart without --join-addr, even
// when no session ever told it of another manager.
func TestRemotesKeepTheJoinAddress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "managers.json")
	r := newRemotes(path, "192.0.2.1:4242")
	r.set([]string{"192.0.2.1:4242"}) // the only manager: no change to save
	if got := newRemotes(path, "").list(); !slices.Equal(got, []string{"192.0.2.1:4242"}) {
		t.Fatalf("after a restart the node knows managers %v, want the one it joined through", got)
	}
}
