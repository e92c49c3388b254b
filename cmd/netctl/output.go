package main

// This file owns how netctl's own values read, beyond what internal/cli
// prints for both CLIs: times with their age, and address counts.

import (
	"math"
	"strconv"
	"time"
)

// now is the clock ages are measured against; tests fix it.
var now = time.Now

// formatSince prints a time and how long ago it was:
// "2025-03-01T12:00:00Z (1h0m0s ago)"; "-" for the zero time.
func formatSince(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t = t.UTC()
	ago := now().Sub(t).Round(time.Second)
	if ago < 0 {
		return t.Format(time.RFC3339) + " (in " + (-ago).String() + ")"
	}
	return t.Format(time.RFC3339) + " (" + ago.String() + " ago)"
}

// formatCount prints an address count; pool sizes saturate at the largest
// uint64, which only IPv6 subnets reach.
func formatCount(n uint64) string {
	if n == math.MaxUint64 {
		return ">=2^64"
	}
	return strconv.FormatUint(n, 10)
}
