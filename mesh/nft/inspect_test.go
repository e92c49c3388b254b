package nft

// Tests of differences on models alone: what `netctl check` shows for each kind of drift.

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shoal/shoal/mesh"
)

func TestDifferencesDescribeEachDrift(t *testing.T) {
	b := modelBalancer(t)
	s := testState(3, 2)
	want := b.desired(s, nil)

	got := b.desired(s, nil)
	if d := differences("t", got, want); len(d) != 0 {
		t.Fatalf("differences of the same: %q", d)
	}

	// A backend gone from the kernel, a VIP's map element pointing elsewhere, an extra VIP, a
	// missing port, the postrouting rule gone.
	delete(got.vips[ip4(1)].backends, 1)
	got.vips[ip4(2)].verdict = describeVerdictElem("port-tcp-8080")
	extra := b.desired(mesh.State{VIPs: []mesh.VIP{testVIP(9, 1)}}, nil)
	got.vips[ip4(10)] = extra.vips[ip4(10)]
	delete(got.ports, portKey{mesh.UDP, 53})
	post := got.base[chainPostrouting]
	post.rules = nil
	got.base[chainPostrouting] = post

	diffs := differences("t", got, want)
	wantDiffs := []mesh.Difference{
		{Kind: "table", Key: "chain postrouting rules", Want: describeRules(want.base[chainPostrouting].rules), Got: "no rules"},
		{Kind: "vip", Key: "198.18.0.1", Service: "svc0000",
			Want: "backends 198.18.64.0 198.18.64.1", Got: "backends 198.18.64.0"},
		{Kind: "vip", Key: "198.18.0.2", Service: "svc0001",
			Want: "map element goto vip-198.18.0.2", Got: "map element goto port-tcp-8080"},
		{Kind: "vip", Key: "198.18.0.10", Service: "svc0009", Want: "absent",
			Got: "chain with " + describeRules(extra.vips[ip4(10)].rules) + "; backends 198.18.64.90"},
		{Kind: "port", Key: "udp/53", Service: "svc0001", Want: "chain with " + describeRules(want.ports[portKey{mesh.UDP, 53}].rules) +
			"; backends 198.18.64.10:5353", Got: "missing"},
	}
	if !reflect.DeepEqual(diffs, wantDiffs) {
		t.Errorf("differences:\n%s\nwant:\n%s", joinDiffs(diffs), joinDiffs(wantDiffs))
	}
}

func TestDifferencesOfAMissingTable(t *testing.T) {
	b := modelBalancer(t)
	diffs := differences("t", newTableModel(), b.desired(testState(1, 1), nil))
	if len(diffs) != 1+1+3 || diffs[0] != (mesh.Difference{Kind: "table", Key: "table ip t", Want: "present", Got: "missing"}) {
		t.Errorf("differences:\n%s\nwant the table, 1 VIP and 3 ports missing", joinDiffs(diffs))
	}
}

func TestBackendSummaryShowsSlotGaps(t *testing.T) {
	o := &objects{backends: map[uint32]string{0: string(addrBytes(ip4(5))), 2: string(addrBytes(ip4(6)))}}
	if got, want := o.backendSummary(formatAddr), "backends 198.18.0.5 [2]198.18.0.6"; got != want {
		t.Errorf("backendSummary = %q, want %q", got, want)
	}
}

func joinDiffs(ds []mesh.Difference) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}
