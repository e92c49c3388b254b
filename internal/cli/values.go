package cli

// This file owns how single values read in tables and summaries: IDs cut
// short, empty values, addresses without their prefix length, VNIs, task
// states and IP bindings' states.

import (
	"strconv"
	"strings"

	"github.com/shoal/shoal/api"
)

// ShortIDLen is how much of an ID tables show, as docker does.
const ShortIDLen = 12

// ShortID is id cut to ShortIDLen characters.
func ShortID(id string) string {
	if len(id) <= ShortIDLen {
		return id
	}
	return id[:ShortIDLen]
}

// OrDash stands in "-" for an empty value in human-readable output.
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// AddrOnly drops the prefix length of "10.20.0.5/24".
func AddrOnly(cidr string) string {
	addr, _, _ := strings.Cut(cidr, "/")
	return addr
}

// FormatVNI prints a VNI, or "-" before the cluster has allocated one.
func FormatVNI(vni uint32) string {
	if vni == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(vni), 10)
}

// TaskStateName is a task state as docker writes it: "running", "shutdown".
func TaskStateName(s api.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

// BindingState is how listings show an IP binding: held while its slot is
// not wanted (after a scale-down), else pinned when --ip or --ip-range
// chose its address, else bound; ", releasing" once `netctl ip release`
// asked for it to be freed.
func BindingState(b *api.IPBinding) string {
	state := "bound"
	switch {
	case b.GetHeldSince() != nil:
		state = "held"
	case b.GetPinned():
		state = "pinned"
	}
	if b.GetReleaseRequested() {
		state += ", releasing"
	}
	return state
}
