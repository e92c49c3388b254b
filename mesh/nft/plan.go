package nft

// This file turns the difference between two tableModels (what the kernel holds, or what the
// last Sync applied, and what it must hold) into a batch: the smallest set of netlink messages
// that makes one into the other, touching only the VIPs and ports that differ. When the table
// itself is missing or its frame (hooked chains, sets) is not what this package makes, the batch
// rebuilds the whole table instead.

import (
	"bytes"
	"maps"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/shoal/shoal/mesh"
)

// batch is one atomic change of the table, with its operations grouped in the order the kernel
// needs them: an element that jumps to a chain goes before the chain, and after it is made.
type batch struct {
	rebuild   bool        // recreate the table from want
	want      *tableModel // the table after the batch
	delElems  map[string][]nftables.SetElement
	flush     []string // chains whose rules are deleted
	delChains []string
	addChains []string
	rules     []chainRule // rules appended, after the flushes
	addElems  map[string][]nftables.SetElement
	changes   mesh.Changes
	// vips and ports are the keys whose objects a piecewise batch changes: a Sync brings the
	// Balancer's mesh.Index up to date from them alone.
	vips  []netip.Addr
	ports []portKey
}

type chainRule struct {
	chain string
	rule  rule
}

func (bt *batch) empty() bool {
	return !bt.rebuild && len(bt.delElems) == 0 && len(bt.flush) == 0 && len(bt.delChains) == 0 &&
		len(bt.addChains) == 0 && len(bt.rules) == 0 && len(bt.addElems) == 0
}

// objectNames are the names and keys of one VIP's or port's objects.
type objectNames struct {
	chain      string // its chain
	verdictMap string // vips or ports
	addrSet    string // vip-addrs for a VIP, "" for a port
	backendMap string // vip-backends or port-backends
	key        []byte // its key in verdictMap and addrSet, and the prefix of its backends
}

func vipNames(a netip.Addr) objectNames {
	return objectNames{chain: vipChain(a), verdictMap: setVIPs, addrSet: setVIPAddrs, backendMap: setVIPBackends, key: addrBytes(a)}
}

func portNames(k portKey) objectNames {
	return objectNames{chain: portChain(k), verdictMap: setPorts, backendMap: setPortBackends, key: portKeyBytes(k)}
}

// plan returns the batch that turns got into want.
func plan(got, want *tableModel) *batch {
	if reason := rebuildReason(got, want); reason != "" {
		return rebuildBatch(want)
	}
	bt := &batch{want: want, delElems: map[string][]nftables.SetElement{}, addElems: map[string][]nftables.SetElement{}}
	for _, name := range slices.Sorted(maps.Keys(want.base)) {
		g, w := got.base[name], want.base[name]
		if rulesEqual(g.rules, w.rules) {
			continue
		}
		if len(g.rules) > 0 {
			bt.flush = append(bt.flush, name)
		}
		for _, r := range w.rules {
			bt.rules = append(bt.rules, chainRule{chain: name, rule: r})
		}
		bt.changes.Updated++
	}
	bt.vips = changedKeys(got.vips, want.vips, netip.Addr.Compare)
	for _, a := range bt.vips {
		bt.object(vipNames(a), got.vips[a], want.vips[a])
	}
	bt.ports = changedKeys(got.ports, want.ports, comparePortKeys)
	for _, k := range bt.ports {
		bt.object(portNames(k), got.ports[k], want.ports[k])
	}
	bt.hairpin(got, want)
	bt.picks(got.picks, want.picks)
	return bt
}

// changedKeys returns, sorted, the keys whose objects differ between got and want. Objects a
// Sync reused are the same pointer in both and cost no comparison.
func changedKeys[K comparable](got, want map[K]*objects, compare func(K, K) int) []K {
	var keys []K
	for k, w := range want {
		if g := got[k]; g != w && (g == nil || !g.equal(w)) {
			keys = append(keys, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compare)
	return keys
}

// picks adds what turns the pick chains g into w. Chains are added before any rule goes to
// them; they are deleted after the rules going to them were flushed (the flushes come first).
func (bt *batch) picks(g, w map[string][]rule) {
	for _, name := range slices.Sorted(maps.Keys(union(g, w))) {
		gr, had := g[name]
		wr, wanted := w[name]
		switch {
		case !wanted:
			bt.flush = append(bt.flush, name)
			bt.delChains = append(bt.delChains, name)
		case !had:
			bt.addChains = append(bt.addChains, name)
			for _, r := range wr {
				bt.rules = append(bt.rules, chainRule{chain: name, rule: r})
			}
		case !rulesEqual(gr, wr):
			if len(gr) > 0 {
				bt.flush = append(bt.flush, name)
			}
			for _, r := range wr {
				bt.rules = append(bt.rules, chainRule{chain: name, rule: r})
			}
			bt.changes.Updated++
		}
	}
}

// rebuildReason says why got cannot be changed into want piece by piece, or "" when it can.
func rebuildReason(got, want *tableModel) string {
	switch {
	case !got.exists:
		return "the table is missing"
	case len(got.foreign) > 0:
		return "the table holds " + got.foreign[0]
	case !maps.Equal(got.sets, want.sets):
		return "its sets differ"
	}
	for name, w := range want.base {
		if g, ok := got.base[name]; !ok || g.hook != w.hook {
			return "chain " + name + " is missing or hooked differently"
		}
	}
	return ""
}

func union[K comparable, V any](a, b map[K]V) map[K]bool {
	u := make(map[K]bool, len(a)+len(b))
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

// object adds what turns one VIP's or port's objects g into w; nil means none.
func (bt *batch) object(n objectNames, g, w *objects) {
	switch {
	case g == nil && w == nil:
		return
	case g == nil:
		bt.changes.Added++
		g = &objects{}
	case w == nil:
		bt.changes.Removed++
		w = &objects{}
	case g.equal(w):
		return
	default:
		bt.changes.Updated++
	}
	// Deletions first: an element jumping to the chain goes before the chain.
	if g.verdict != "" && g.verdict != w.verdict {
		bt.delElems[n.verdictMap] = append(bt.delElems[n.verdictMap], nftables.SetElement{Key: n.key})
	}
	if g.listed && !w.listed {
		bt.delElems[n.addrSet] = append(bt.delElems[n.addrSet], nftables.SetElement{Key: n.key})
	}
	for _, slot := range slices.Sorted(maps.Keys(g.backends)) {
		if d, ok := w.backends[slot]; !ok || d != g.backends[slot] {
			bt.delElems[n.backendMap] = append(bt.delElems[n.backendMap], nftables.SetElement{Key: slotBytes(n.key, slot)})
		}
	}
	switch {
	case g.chain && !w.chain:
		bt.flush = append(bt.flush, n.chain)
		bt.delChains = append(bt.delChains, n.chain)
	case !g.chain && w.chain:
		bt.addChains = append(bt.addChains, n.chain)
	}
	if w.chain && !rulesEqual(g.rules, w.rules) {
		if g.chain && len(g.rules) > 0 {
			bt.flush = append(bt.flush, n.chain)
		}
		for _, r := range w.rules {
			bt.rules = append(bt.rules, chainRule{chain: n.chain, rule: r})
		}
	}
	if w.verdict != "" && w.verdict != g.verdict {
		bt.addElems[n.verdictMap] = append(bt.addElems[n.verdictMap], nftables.SetElement{
			Key: n.key, VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: n.chain},
		})
	}
	if w.listed && !g.listed {
		bt.addElems[n.addrSet] = append(bt.addElems[n.addrSet], nftables.SetElement{Key: n.key})
	}
	for _, slot := range slices.Sorted(maps.Keys(w.backends)) {
		if d, ok := g.backends[slot]; !ok || d != w.backends[slot] {
			bt.addElems[n.backendMap] = append(bt.addElems[n.backendMap], nftables.SetElement{
				Key: slotBytes(n.key, slot), Val: []byte(w.backends[slot]),
			})
		}
	}
}

// hairpin adds what turns the hairpin set's elements of got into want's. A difference no VIP's
// change of backends explains (an element deleted or added by hand) counts as one update, of
// the set.
func (bt *batch) hairpin(got, want *tableModel) {
	g, w := got.hairpin, want.hairpin
	var gone, added []addr4
	if got.counted && want.counted {
		// A Sync: only the backends of the VIPs it changes can differ.
		seen := map[addr4]bool{}
		for _, a := range bt.vips {
			for _, o := range []*objects{got.vips[a], want.vips[a]} {
				if o == nil {
					continue
				}
				for _, d := range o.backends {
					be := addr4Of(d)
					if seen[be] {
						continue
					}
					seen[be] = true
					switch gn, wn := g[be] > 0, w[be] > 0; {
					case gn && !wn:
						gone = append(gone, be)
					case wn && !gn:
						added = append(added, be)
					}
				}
			}
		}
	} else {
		for a := range g {
			if w[a] == 0 {
				gone = append(gone, a)
			}
		}
		for a := range w {
			if g[a] == 0 {
				added = append(added, a)
			}
		}
	}
	slices.SortFunc(gone, compareAddr4)
	slices.SortFunc(added, compareAddr4)
	for _, a := range gone {
		bt.delElems[setHairpin] = append(bt.delElems[setHairpin], nftables.SetElement{Key: hairpinKey(a)})
	}
	for _, a := range added {
		bt.addElems[setHairpin] = append(bt.addElems[setHairpin], nftables.SetElement{Key: hairpinKey(a)})
	}
	if len(gone)+len(added) > 0 {
		explained := explainedHairpin(got, want, bt.vips)
		for _, a := range append(gone, added...) {
			if !explained[a] {
				bt.changes.Updated++ // the set, edited by hand
				break
			}
		}
	}
}

// explainedHairpin returns the backend addresses whose hairpin element the change of the VIPs
// vips from got to want accounts for: those one of the two lists as a backend of a VIP and the
// other does not.
func explainedHairpin(got, want *tableModel, vips []netip.Addr) map[addr4]bool {
	explained := map[addr4]bool{}
	for _, a := range vips {
		listed := map[string]int{} // +1 listed by got, +2 by want
		for i, o := range []*objects{got.vips[a], want.vips[a]} {
			for _, d := range o.slots() {
				listed[d] += i + 1
			}
		}
		for d, by := range listed {
			if by != 3 {
				explained[addr4Of(d)] = true
			}
		}
	}
	return explained
}

// hairpinKey is the hairpin set's key for a backend address: the address twice.
func hairpinKey(a addr4) []byte {
	k := make([]byte, 8)
	copy(k, a[:])
	copy(k[4:], a[:])
	return k
}

func compareAddr4(a, b addr4) int { return bytes.Compare(a[:], b[:]) }

// rebuildBatch recreates the table from want.
func rebuildBatch(want *tableModel) *batch {
	bt := &batch{rebuild: true, want: want, delElems: map[string][]nftables.SetElement{}, addElems: map[string][]nftables.SetElement{}}
	empty := &objects{}
	for _, a := range slices.SortedFunc(maps.Keys(want.vips), netip.Addr.Compare) {
		bt.object(vipNames(a), empty, want.vips[a])
	}
	for _, k := range slices.SortedFunc(maps.Keys(want.ports), comparePortKeys) {
		bt.object(portNames(k), empty, want.ports[k])
	}
	bt.hairpin(newTableModel(), want)
	bt.picks(nil, want.picks)
	bt.changes = mesh.Changes{Added: len(want.vips) + len(want.ports), Rebuilt: true}
	return bt
}
