package main

import (
	"testing"

	"github.com/shoal/shoal/internal/nstest"
)

// inTempNetns runs fn in a fresh network namespace, which the kernel removes
// with everything in it (links, iptables tables) when the test ends.
func inTempNetns(t *testing.T, fn func() error) { nstest.InTemp(t, fn) }
