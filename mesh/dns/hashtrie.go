package dns

// This file owns hashTrie, the persistent map a zone's records live in: a hash array mapped trie,
// github.com/benbjohnson/immutable's Map, behind the few operations the records need. A version
// never changes once made; a change copies only the nodes on the path to its key and shares every
// other node with the version it started from, so it costs O(log32 n) however big the map is, and
// readers of an old version need no lock. An edit of an empty map (Sync building a zone) fills a
// builder in place instead, copying nothing.

import (
	"hash/maphash"
	"iter"
	"net/netip"

	"github.com/benbjohnson/immutable"
)

// trieSeed seeds every trie's hash; one seed for the process.
var trieSeed = maphash.MakeSeed()

// hasher hashes a trie's keys with hash, and compares them with ==.
type hasher[K comparable] struct{ hash func(K) uint32 }

func (h hasher[K]) Hash(key K) uint32 { return h.hash(key) }
func (h hasher[K]) Equal(a, b K) bool { return a == b }

// hashString is the hash of a trie keyed by string.
func hashString(s string) uint32 { return uint32(maphash.String(trieSeed, s)) }

// hashAddr is the hash of a trie keyed by address.
func hashAddr(ip netip.Addr) uint32 { return uint32(maphash.Comparable(trieSeed, ip)) }

// hashTrie is one version of a persistent map from K to V. The zero hashTrie is not usable:
// newHashTrie gives an empty one.
type hashTrie[K comparable, V any] struct {
	m *immutable.Map[K, V]
	h hasher[K] // what m hashes with, for the builder of a map made anew
}

// newHashTrie returns an empty map whose keys hash with hash.
func newHashTrie[K comparable, V any](hash func(K) uint32) hashTrie[K, V] {
	h := hasher[K]{hash: hash}
	return hashTrie[K, V]{m: immutable.NewMap[K, V](h), h: h}
}

// Len is the number of keys.
func (t hashTrie[K, V]) Len() int { return t.m.Len() }

// Get returns the value of key, and whether key is in the map.
func (t hashTrie[K, V]) Get(key K) (V, bool) { return t.m.Get(key) }

// All yields every key with its value, in no particular order.
func (t hashTrie[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for it := t.m.Iterator(); !it.Done(); {
			k, v, _ := it.Next()
			if !yield(k, v) {
				return
			}
		}
	}
}

// trieEditor makes a new version from one, a change at a time; the version it started from
// never changes.
type trieEditor[K comparable, V any] struct {
	m       *immutable.Map[K, V]        // the version so far, when not building
	builder *immutable.MapBuilder[K, V] // the map being built, when editing an empty one
	h       hasher[K]
	done    bool
}

// Edit starts a batch of changes to t. expect is how many keys the batch will set: an edit of
// an empty map expecting some (a zone built whole) builds in place. t itself never changes.
func (t hashTrie[K, V]) Edit(expect int) trieEditor[K, V] {
	if t.m.Len() == 0 && expect > 0 {
		return trieEditor[K, V]{builder: immutable.NewMapBuilder[K, V](t.h), h: t.h}
	}
	return trieEditor[K, V]{m: t.m, h: t.h}
}

// Get returns the value of key as the editor's changes so far leave it.
func (e *trieEditor[K, V]) Get(key K) (V, bool) {
	if e.builder != nil {
		return e.builder.Get(key)
	}
	return e.m.Get(key)
}

// Set makes value the value of key.
func (e *trieEditor[K, V]) Set(key K, value V) {
	e.check()
	if e.builder != nil {
		e.builder.Set(key, value)
		return
	}
	e.m = e.m.Set(key, value)
}

// Upsert makes merge(old, found) the value of key, where old is its value now (found false: the
// key is not there, old is the zero V).
func (e *trieEditor[K, V]) Upsert(key K, merge func(old V, found bool) V) {
	old, found := e.Get(key)
	e.Set(key, merge(old, found))
}

// Delete takes key out; a key not there is no error.
func (e *trieEditor[K, V]) Delete(key K) {
	e.check()
	if e.builder != nil {
		e.builder.Delete(key)
		return
	}
	e.m = e.m.Delete(key)
}

// Done returns the new version; the editor is spent.
func (e *trieEditor[K, V]) Done() hashTrie[K, V] {
	e.check()
	e.done = true
	if e.builder != nil {
		return hashTrie[K, V]{m: e.builder.Map(), h: e.h}
	}
	return hashTrie[K, V]{m: e.m, h: e.h}
}

func (e *trieEditor[K, V]) check() {
	if e.done {
		panic("dns: trieEditor used after Done")
	}
}
