package ipvs

// This file compares a model read from the kernel with the model a State needs and describes
// each difference for people: the mark table's frame, each VIP and port (its mark, labels and
// IPVS service), and IPVS services of this package that no mark leads to.

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/shoal/shoal/mesh"
)

func differences(table string, got, want *model) []mesh.Difference {
	var diffs []mesh.Difference
	tableDiff := func(key, w, g string) {
		diffs = append(diffs, mesh.Difference{Kind: "table", Key: key, Want: w, Got: g})
	}
	if !got.frame.exists {
		tableDiff("table ip "+table, "present", "missing")
	} else {
		for _, name := range slices.Sorted(maps.Keys(union(got.frame.sets, want.frame.sets))) {
			if g, w := got.frame.sets[name], want.frame.sets[name]; g != w {
				tableDiff("set "+name, orMissing(w), orMissing(g))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(union(got.frame.chains, want.frame.chains))) {
			if g, w := got.frame.chains[name], want.frame.chains[name]; g != w {
				tableDiff("chain "+name, orMissing(w), orMissing(g))
			}
		}
	}
	for _, a := range sortedKeys(union(got.vips, want.vips), netip.Addr.Compare) {
		if d, ok := keyDifference("vip", a.String(), got, want, got.vips, want.vips, a); ok {
			diffs = append(diffs, d)
		}
	}
	for _, k := range sortedKeys(union(got.ports, want.ports), comparePortKeys) {
		if d, ok := keyDifference("port", k.String(), got, want, got.ports, want.ports, k); ok {
			diffs = append(diffs, d)
		}
	}
	marked := map[uint32]bool{}
	for _, e := range got.vips {
		marked[e.mark] = true
	}
	for _, e := range got.ports {
		marked[e.mark] = true
	}
	for _, mark := range sortedMarks(got.services) {
		if _, wanted := want.services[mark]; !wanted && !marked[mark] {
			tableDiff("ipvs service "+describeMark(mark), "absent", got.services[mark].String())
		}
	}
	return diffs
}

// keyDifference describes how one VIP's or port's element and service differ.
func keyDifference[K comparable](kind, key string, got, want *model, g, w map[K]element, k K) (mesh.Difference, bool) {
	ge, had := g[k]
	we, wanted := w[k]
	d := mesh.Difference{Kind: kind, Key: key}
	for _, e := range []element{we, ge} {
		if s := parseComment(e.comment)["service"]; s != "" && d.Service == "" {
			d.Service = s
		}
	}
	describe := func(m *model, e element) string {
		if e.mark == RejectMark {
			return e.String() + "; no backends"
		}
		if svc, ok := m.services[e.mark]; ok {
			return e.String() + "; " + svc.String()
		}
		return e.String() + "; no IPVS service"
	}
	switch {
	case !had && !wanted:
		return d, false
	case !had:
		d.Want, d.Got = describe(want, we), "missing"
	case !wanted:
		d.Want, d.Got = "absent", describe(got, ge)
	case ge == we && got.services[ge.mark].equal(want.services[we.mark]):
		return d, false
	default:
		d.Want, d.Got = describe(want, we), describe(got, ge)
	}
	return d, true
}

func orMissing(s string) string {
	if s == "" {
		return "missing"
	}
	return s
}
