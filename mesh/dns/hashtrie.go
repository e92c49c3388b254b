package dns

// This file owns hashTrie, the persistent map a zone's records live in: a hash array mapped trie
// (Bagwell, "Ideal Hash Trees", 2001). A version of the map never changes once built; a batch of
// changes (an edit) copies only the nodes on the paths to the keys it changes and shares every
// other node with the version it started from. So a change costs O(log32 n) node copies however
// big the map is, and readers of the old version need no lock. An edit changes the nodes it
// created (or already copied) in place, so building a whole map in one edit, as Sync does, copies
// nothing.

import (
	"hash/maphash"
	"iter"
	"math/bits"
	"net/netip"
	"slices"
	"sync/atomic"
)

const (
	trieBits   = 5              // hash bits used per level
	trieFanout = 1 << trieBits  // slots of a level
	trieMask   = trieFanout - 1 // the bits of a hash that index a level
	hashWidth  = 64             // bits in a hash: below that depth, keys whose hashes are equal share a collision node
)

// trieSeed seeds every trie's hash; one seed for the process, so versions share nodes.
var trieSeed = maphash.MakeSeed()

// hashString is the hash of a trie keyed by string.
func hashString(s string) uint64 { return maphash.String(trieSeed, s) }

// hashAddr is the hash of a trie keyed by address.
func hashAddr(ip netip.Addr) uint64 { return maphash.Comparable(trieSeed, ip) }

// hashTrie is one version of a persistent map from K to V. The zero hashTrie is not usable:
// newHashTrie gives an empty one.
type hashTrie[K comparable, V any] struct {
	hash func(K) uint64
	root *trieNode[K, V] // nil when empty
	len  int
}

// trieNode is one level of the trie. At depths below hashWidth, bitmap says which of the 32
// indexes (5 bits of the hash) have a slot, and slots holds them in index order. Deeper, the node
// is a collision node: slots are leaves whose keys' whole hashes are equal, and bitmap is unused.
type trieNode[K comparable, V any] struct {
	edit   uint64 // the edit that may still change this node in place
	bitmap uint32
	slots  []trieSlot[K, V]
}

// trieSlot is a deeper node or a leaf: two pointers, so that copying a node, which every change
// does on its path, copies little.
type trieSlot[K comparable, V any] struct {
	child *trieNode[K, V]
	leaf  *trieLeaf[K, V]
}

// trieLeaf is one key and its value. It never changes: a new value is a new leaf.
type trieLeaf[K comparable, V any] struct {
	key   K
	value V
}

// lastEdit numbers editors: each marks the nodes it creates with its own number.
var lastEdit atomic.Uint64

// newHashTrie returns an empty map whose keys hash with hash.
func newHashTrie[K comparable, V any](hash func(K) uint64) hashTrie[K, V] {
	return hashTrie[K, V]{hash: hash}
}

// Len is the number of keys.
func (m hashTrie[K, V]) Len() int { return m.len }

// Get returns the value of key, and whether key is in the map.
func (m hashTrie[K, V]) Get(key K) (V, bool) {
	h := m.hash(key)
	for n, shift := m.root, uint(0); n != nil; shift += trieBits {
		if shift >= hashWidth {
			if i := n.collisionIndex(key); i >= 0 {
				return n.slots[i].leaf.value, true
			}
			break
		}
		i, found := n.index(h, shift)
		if !found {
			break
		}
		s := n.slots[i]
		if s.leaf != nil {
			if s.leaf.key == key {
				return s.leaf.value, true
			}
			break
		}
		n = s.child
	}
	var zero V
	return zero, false
}

// All yields every key with its value, in no particular order.
func (m hashTrie[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		m.root.walk(yield)
	}
}

// walk yields the keys under n; false when yield asked to stop.
func (n *trieNode[K, V]) walk(yield func(K, V) bool) bool {
	if n == nil {
		return true
	}
	for _, s := range n.slots {
		if s.leaf != nil {
			if !yield(s.leaf.key, s.leaf.value) {
				return false
			}
		} else if !s.child.walk(yield) {
			return false
		}
	}
	return true
}

// index returns where in n.slots the slot for hash h at the level of shift is, or would go;
// found says whether it is there.
func (n *trieNode[K, V]) index(h uint64, shift uint) (i int, found bool) {
	bit := uint32(1) << (h >> shift & trieMask)
	return bits.OnesCount32(n.bitmap & (bit - 1)), n.bitmap&bit != 0
}

// collisionIndex returns the index of key in the collision node n, or -1.
func (n *trieNode[K, V]) collisionIndex(key K) int {
	return slices.IndexFunc(n.slots, func(s trieSlot[K, V]) bool { return s.leaf.key == key })
}

// trieEditor makes one new version of a map from an old one. Its changes are seen by its own Get
// at once and by nobody else; Done returns the new version, and the editor may not be used after.
type trieEditor[K comparable, V any] struct {
	m    hashTrie[K, V]
	edit uint64 // 0 once Done
	// expect is about how many keys the map will hold: the room given to a node that grows.
	expect int
}

// Edit starts a batch of changes to m, which will then hold about expect keys (0: unknown; the
// guess only sizes nodes). m itself never changes.
func (m hashTrie[K, V]) Edit(expect int) trieEditor[K, V] {
	return trieEditor[K, V]{m: m, edit: lastEdit.Add(1), expect: expect}
}

// Get returns the value of key as the editor's changes so far leave it.
func (e *trieEditor[K, V]) Get(key K) (V, bool) { return e.m.Get(key) }

// Done returns the new version. Its nodes are frozen: the editor was the only one allowed to
// change them, and it is spent.
func (e *trieEditor[K, V]) Done() hashTrie[K, V] {
	m := e.m
	e.edit = 0
	return m
}

// Set makes value the value of key.
func (e *trieEditor[K, V]) Set(key K, value V) {
	e.Upsert(key, func(V, bool) V { return value })
}

// Upsert makes merge(old, found) the value of key, where old is its value now (found false:
// the key is not there, old is the zero V). It finds the key once, where Get then Set would
// twice.
func (e *trieEditor[K, V]) Upsert(key K, merge func(old V, found bool) V) {
	if e.edit == 0 {
		panic("dns: trieEditor used after Done")
	}
	root := e.m.root
	if root == nil {
		root = &trieNode[K, V]{edit: e.edit}
	}
	var added bool
	e.m.root, added = e.set(root, 0, e.m.hash(key), key, merge)
	if added {
		e.m.len++
	}
}

// Delete takes key out; a key not there is no error.
func (e *trieEditor[K, V]) Delete(key K) {
	if e.edit == 0 {
		panic("dns: trieEditor used after Done")
	}
	if e.m.root == nil {
		return
	}
	root, removed := e.delete(e.m.root, 0, e.m.hash(key), key)
	if removed {
		e.m.root = root
		e.m.len--
	}
}

// set makes merge(old, found) the value of key, of hash h, in the subtrie n at the level of
// shift, and returns the subtrie's new node; added is false when the key was there already.
func (e *trieEditor[K, V]) set(n *trieNode[K, V], shift uint, h uint64, key K, merge func(V, bool) V) (_ *trieNode[K, V], added bool) {
	var zero V
	if shift >= hashWidth {
		if i := n.collisionIndex(key); i >= 0 {
			n = e.writable(n)
			n.slots[i].leaf = &trieLeaf[K, V]{key: key, value: merge(n.slots[i].leaf.value, true)}
			return n, false
		}
		leaf := &trieLeaf[K, V]{key: key, value: merge(zero, false)}
		return e.withSlot(n, shift, len(n.slots), trieSlot[K, V]{leaf: leaf}), true
	}
	i, found := n.index(h, shift)
	if !found {
		leaf := &trieLeaf[K, V]{key: key, value: merge(zero, false)}
		n = e.withSlot(n, shift, i, trieSlot[K, V]{leaf: leaf})
		n.bitmap |= 1 << (h >> shift & trieMask)
		return n, true
	}
	s := n.slots[i]
	switch {
	case s.child != nil:
		child, added := e.set(s.child, shift+trieBits, h, key, merge)
		if child != s.child {
			n = e.writable(n)
			n.slots[i].child = child
		}
		return n, added
	case s.leaf.key == key:
		n = e.writable(n)
		n.slots[i].leaf = &trieLeaf[K, V]{key: key, value: merge(s.leaf.value, true)}
		return n, false
	default: // another key in the slot: both go one level down
		leaf := &trieLeaf[K, V]{key: key, value: merge(zero, false)}
		n = e.writable(n)
		n.slots[i] = trieSlot[K, V]{child: e.pair(shift+trieBits, e.m.hash(s.leaf.key), s.leaf, h, leaf)}
		return n, true
	}
}

// pair returns a subtrie at the level of shift holding the leaves a and b, of different keys
// whose hashes are ha and hb.
func (e *trieEditor[K, V]) pair(shift uint, ha uint64, a *trieLeaf[K, V], hb uint64, b *trieLeaf[K, V]) *trieNode[K, V] {
	n := &trieNode[K, V]{edit: e.edit}
	if shift >= hashWidth {
		n.slots = []trieSlot[K, V]{{leaf: a}, {leaf: b}}
		return n
	}
	ia, ib := ha>>shift&trieMask, hb>>shift&trieMask
	switch {
	case ia == ib:
		n.bitmap = 1 << ia
		n.slots = []trieSlot[K, V]{{child: e.pair(shift+trieBits, ha, a, hb, b)}}
	case ia < ib:
		n.bitmap = 1<<ia | 1<<ib
		n.slots = []trieSlot[K, V]{{leaf: a}, {leaf: b}}
	default:
		n.bitmap = 1<<ia | 1<<ib
		n.slots = []trieSlot[K, V]{{leaf: b}, {leaf: a}}
	}
	return n
}

// delete takes key (of hash h) out of the subtrie n at the level of shift and returns the
// subtrie's new node: nil when it is left empty. removed is false when the key was not there,
// and then n is returned unchanged.
func (e *trieEditor[K, V]) delete(n *trieNode[K, V], shift uint, h uint64, key K) (_ *trieNode[K, V], removed bool) {
	if shift >= hashWidth {
		i := n.collisionIndex(key)
		if i < 0 {
			return n, false
		}
		return e.withoutSlot(n, i, 0), true
	}
	i, found := n.index(h, shift)
	if !found {
		return n, false
	}
	bit := uint32(1) << (h >> shift & trieMask)
	s := n.slots[i]
	if s.leaf != nil {
		if s.leaf.key != key {
			return n, false
		}
		return e.withoutSlot(n, i, bit), true
	}
	child, removed := e.delete(s.child, shift+trieBits, h, key)
	switch {
	case !removed:
		return n, false
	case child == nil:
		return e.withoutSlot(n, i, bit), true
	}
	n = e.writable(n)
	if len(child.slots) == 1 && child.slots[0].leaf != nil {
		n.slots[i] = child.slots[0] // a lone leaf moves up, so that depth follows the keys left
	} else {
		n.slots[i].child = child
	}
	return n, true
}

// writable returns n if this editor may change it, else a copy of n that it may.
func (e *trieEditor[K, V]) writable(n *trieNode[K, V]) *trieNode[K, V] {
	if n.edit == e.edit {
		return n
	}
	return &trieNode[K, V]{edit: e.edit, bitmap: n.bitmap, slots: slices.Clone(n.slots)}
}

// withSlot returns n, or a copy of n this editor may change, with s inserted at slots[i]. A node
// that must grow gets the room the keys expected under the level of shift will fill, or else
// twice what it had, as append does; a copy of another version's node gets what it needs.
func (e *trieEditor[K, V]) withSlot(n *trieNode[K, V], shift uint, i int, s trieSlot[K, V]) *trieNode[K, V] {
	owned := n.edit == e.edit
	if owned && len(n.slots) < cap(n.slots) {
		n.slots = slices.Insert(n.slots, i, s)
		return n
	}
	room := len(n.slots) + 1
	if owned {
		room = max(room, 2*len(n.slots))
	}
	if shift < hashWidth {
		room = min(max(room, e.expect>>shift), trieFanout)
	}
	slots := make([]trieSlot[K, V], len(n.slots)+1, room)
	copy(slots, n.slots[:i])
	slots[i] = s
	copy(slots[i+1:], n.slots[i:])
	if !owned {
		n = &trieNode[K, V]{edit: e.edit, bitmap: n.bitmap}
	}
	n.slots = slots
	return n
}

// withoutSlot returns n, or a copy of n this editor may change, without slots[i], whose bit in
// the bitmap is bit (0 in a collision node); nil when nothing is left.
func (e *trieEditor[K, V]) withoutSlot(n *trieNode[K, V], i int, bit uint32) *trieNode[K, V] {
	if len(n.slots) == 1 {
		return nil
	}
	if n.edit != e.edit {
		slots := make([]trieSlot[K, V], 0, len(n.slots)-1)
		slots = append(append(slots, n.slots[:i]...), n.slots[i+1:]...)
		return &trieNode[K, V]{edit: e.edit, bitmap: n.bitmap &^ bit, slots: slots}
	}
	n.bitmap &^= bit
	n.slots = slices.Delete(n.slots, i, i+1)
	return n
}
