package dns

// Tests of the persistent map as the records use it: random batches of changes (built anew or
// edited), checked against a Go map, with hash functions that force deep paths and whole-hash
// collisions; every version must still hold what it held when later ones are made from it.

import (
	"fmt"
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"testing"
)

// trieVersion is one version of a map with what it must hold.
type trieVersion struct {
	m    hashTrie[int, int]
	want map[int]int
}

func TestHashTrieFollowsMap(t *testing.T) {
	const keys = 300 // keys are 0..keys-1
	for _, tc := range []struct {
		name string
		hash func(int) uint32
	}{
		{"spread", func(k int) uint32 { return uint32(maphash.Comparable(trieSeed, k)) }},
		// Keys differ only in the top bits: every path goes down to the last levels.
		{"deep", func(k int) uint32 { return uint32(k) << 23 }},
		// Keys share whole hashes, five keys to a hash: collision nodes below the last level.
		{"colliding", func(k int) uint32 { return uint32(k / 5) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			versions := []trieVersion{{m: newHashTrie[int, int](tc.hash), want: map[int]int{}}}
			for batch := range 60 {
				from := versions[rng.IntN(len(versions))] // edit any version, not only the last
				want := maps.Clone(from.want)
				e := from.m.Edit(rng.IntN(2) * keys)
				for op := range rng.IntN(40) + 1 {
					k := rng.IntN(keys)
					switch rng.IntN(4) {
					case 0:
						e.Delete(k)
						delete(want, k)
					case 1:
						e.Upsert(k, func(old int, found bool) int {
							if _, was := want[k]; found != was || old != want[k] {
								t.Fatalf("batch %d op %d: Upsert(%d) saw %d, %v; want %d, %v", batch, op, k, old, found, want[k], was)
							}
							return old + 1
						})
						want[k]++
					default:
						e.Set(k, batch*1000+op)
						want[k] = batch*1000 + op
					}
					if got, found := e.Get(k); got != want[k] || found != hasKey(want, k) {
						t.Fatalf("batch %d op %d: editor's Get(%d) = %d, %v; want %d", batch, op, k, got, found, want[k])
					}
				}
				versions = append(versions, trieVersion{m: e.Done(), want: want})
				for i, v := range versions {
					checkTrie(t, v.m, v.want, keys, fmt.Sprintf("after batch %d, version %d", batch, i))
				}
			}
			// Emptied, a map holds nothing.
			e := versions[len(versions)-1].m.Edit(0)
			for k := range keys {
				e.Delete(k)
			}
			checkTrie(t, e.Done(), map[int]int{}, keys, "emptied")
		})
	}
}

func TestHashTrieEditorSpentAfterDone(t *testing.T) {
	e := newHashTrie[int, int](func(k int) uint32 { return uint32(k) }).Edit(0)
	e.Set(1, 1)
	m := e.Done()
	defer func() {
		if recover() == nil {
			t.Error("Set after Done did not panic")
		}
		if v, _ := m.Get(2); v != 0 || m.Len() != 1 {
			t.Errorf("Set after Done changed the version Done returned: Len %d, Get(2) %d", m.Len(), v)
		}
	}()
	e.Set(2, 2)
}

// checkTrie fails the test unless m holds exactly want, keys being below keys.
func checkTrie(t *testing.T, m hashTrie[int, int], want map[int]int, keys int, what string) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("%s: Len %d, want %d", what, m.Len(), len(want))
	}
	for k := range keys {
		got, found := m.Get(k)
		if w, ok := want[k]; got != w || found != ok {
			t.Fatalf("%s: Get(%d) = %d, %v; want %d, %v", what, k, got, found, w, ok)
		}
	}
	seen := make(map[int]int, len(want))
	for k, v := range m.All() {
		if _, dup := seen[k]; dup {
			t.Fatalf("%s: All yields %d twice", what, k)
		}
		seen[k] = v
	}
	if !maps.Equal(seen, want) {
		t.Fatalf("%s: All yields %v, want %v", what, seen, want)
	}
}

func hasKey(m map[int]int, k int) bool {
	_, ok := m[k]
	return ok
}
