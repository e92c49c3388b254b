package nft

// This file compares a table read from the kernel with the table a State needs and describes
// each difference for people (`netctl check`): the table's frame (its existence, sets, hooked
// chains and anything foreign), then each VIP and port whose objects differ, showing only the
// parts that differ.

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/shoal/shoal/mesh"
)

func differences(table string, got, want *tableModel) []mesh.Difference {
	var diffs []mesh.Difference
	tableDiff := func(key, w, g string) {
		diffs = append(diffs, mesh.Difference{Kind: "table", Key: key, Want: w, Got: g})
	}
	if !got.exists {
		tableDiff("table ip "+table, "present", "missing")
	}
	for _, f := range got.foreign {
		tableDiff(f, "absent (not made by shoal)", "present")
	}
	for _, name := range slices.Sorted(maps.Keys(union(got.sets, want.sets))) {
		if g, w := got.sets[name], want.sets[name]; got.exists && g != w {
			tableDiff("set "+name, orMissing(w), orMissing(g))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want.base)) {
		g, ok := got.base[name]
		w := want.base[name]
		switch {
		case !got.exists:
		case !ok || g.hook != w.hook:
			tableDiff("chain "+name, w.hook, orMissing(g.hook))
		case !rulesEqual(g.rules, w.rules):
			tableDiff("chain "+name+" rules", describeRules(w.rules), describeRules(g.rules))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(union(got.picks, want.picks))) {
		if g, w := got.picks[name], want.picks[name]; got.exists && !rulesEqual(g, w) {
			tableDiff("chain "+name, describePick(w), describePick(g))
		}
	}
	// A hairpin element that differs because a VIP's backends do is told with the VIP.
	var vipDiffs []mesh.Difference
	var differing []netip.Addr
	for _, a := range slices.SortedFunc(maps.Keys(union(got.vips, want.vips)), netip.Addr.Compare) {
		if d, ok := objectDifference("vip", a.String(), got.vips[a], want.vips[a], formatAddr); ok {
			vipDiffs = append(vipDiffs, d)
			differing = append(differing, a)
		}
	}
	explained := explainedHairpin(got, want, differing)
	for _, a := range slices.SortedFunc(maps.Keys(union(got.hairpin, want.hairpin)), compareAddr4) {
		if g, w := got.hairpin[a] > 0, want.hairpin[a] > 0; got.exists && g != w && !explained[a] {
			tableDiff("set "+setHairpin+" element "+formatAddr(string(a[:])), presence(w), presence(g))
		}
	}
	diffs = append(diffs, vipDiffs...)
	for _, k := range slices.SortedFunc(maps.Keys(union(got.ports, want.ports)), comparePortKeys) {
		if d, ok := objectDifference("port", k.String(), got.ports[k], want.ports[k], formatBackend); ok {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// objectDifference describes how one VIP's or port's objects g differ from w.
func objectDifference(kind, key string, g, w *objects, format func(string) string) (mesh.Difference, bool) {
	d := mesh.Difference{Kind: kind, Key: key}
	for _, o := range []*objects{w, g} {
		if o == nil {
			continue
		}
		if l, ok := o.labels(kind); ok && d.Service == "" {
			d.Service = l["service"]
		}
	}
	switch {
	case g == nil && w == nil:
		return d, false
	case g == nil:
		d.Want, d.Got = w.summary(format), "missing"
	case w == nil:
		d.Want, d.Got = "absent", g.summary(format)
	case g.equal(w):
		return d, false
	default:
		var want, got []string
		add := func(differs bool, part func(*objects) string) {
			if differs {
				want, got = append(want, part(w)), append(got, part(g))
			}
		}
		add(g.chain != w.chain || !rulesEqual(g.rules, w.rules), func(o *objects) string { return o.chainSummary() })
		add(g.verdict != w.verdict, func(o *objects) string { return "map element " + orMissing(o.verdict) })
		add(g.listed != w.listed, func(o *objects) string { return fmt.Sprintf("in %s %t", setVIPAddrs, o.listed) })
		add(!maps.Equal(g.backends, w.backends), func(o *objects) string { return o.backendSummary(format) })
		d.Want, d.Got = strings.Join(want, "; "), strings.Join(got, "; ")
	}
	return d, true
}

func (o *objects) summary(format func(string) string) string {
	return o.chainSummary() + "; " + o.backendSummary(format)
}

func (o *objects) chainSummary() string {
	if !o.chain {
		return "no chain"
	}
	return "chain with " + describeRules(o.rules)
}

// backendSummary lists the backends in slot order: "backends 10.0.0.5 10.0.0.6", with the slot
// written out where the slots are not 0, 1, 2, ….
func (o *objects) backendSummary(format func(string) string) string {
	if len(o.backends) == 0 {
		return "no backends"
	}
	var parts []string
	for i, slot := range slices.Sorted(maps.Keys(o.backends)) {
		p := format(o.backends[slot])
		if slot != uint32(i) {
			p = fmt.Sprintf("[%d]%s", slot, p)
		}
		parts = append(parts, p)
	}
	return "backends " + strings.Join(parts, " ")
}

func presence(present bool) string {
	if present {
		return "present"
	}
	return "absent"
}

func describeRules(rs []rule) string {
	if len(rs) == 0 {
		return "no rules"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = "rule " + r.String()
	}
	return strings.Join(parts, "; ")
}

func describePick(rs []rule) string {
	if rs == nil {
		return "missing"
	}
	return describeRules(rs)
}

func formatAddr(data string) string {
	a, err := parseAddr([]byte(data))
	if err != nil {
		return fmt.Sprintf("%x", data)
	}
	return a.String()
}

func formatBackend(data string) string {
	b, err := parseBackend([]byte(data))
	if err != nil {
		return fmt.Sprintf("%x", data)
	}
	return b.String()
}

func orMissing(s string) string {
	if s == "" {
		return "missing"
	}
	return s
}
