package ipam

// This file owns spanSet, an ordered set of addresses stored as maximal runs (spans) of
// consecutive addresses in a treap keyed by each span's first address. Its cost follows the
// number of runs, not the number of addresses: 100,000 addresses allocated in a row are one node.

// spanSet is a set of addresses kept as disjoint, non-adjacent spans: two spans never touch, so
// the address right after a span is never in the set. The zero value is an empty set.
type spanSet struct {
	root  *spanNode
	spans int    // number of spans (nodes)
	seed  uint64 // splitmix64 state for node priorities: deterministic, so a set's shape is too
}

type spanNode struct {
	span
	prio        uint64
	left, right *spanNode
}

// find is the span containing x, or nil.
func (s *spanSet) find(x u128) *spanNode {
	for n := s.root; n != nil; {
		switch {
		case x.less(n.first):
			n = n.left
		case n.last.less(x):
			n = n.right
		default:
			return n
		}
	}
	return nil
}

func (s *spanSet) contains(x u128) bool { return s.find(x) != nil }

// neighbours is the span with the greatest first address <= x (it may contain x) and the span with
// the least first address > x; either may be nil.
func (s *spanSet) neighbours(x u128) (floor, ceil *spanNode) {
	for n := s.root; n != nil; {
		if x.less(n.first) {
			ceil, n = n, n.left
		} else {
			floor, n = n, n.right
		}
	}
	return floor, ceil
}

// add puts x in the set, merging it with the spans it touches; false if x was in the set already.
func (s *spanSet) add(x u128) bool {
	floor, ceil := s.neighbours(x)
	if floor != nil && !floor.last.less(x) {
		return false
	}
	joinsFloor := floor != nil && floor.last.next() == x
	joinsCeil := ceil != nil && ceil.first == x.next() // ceil.first > x, so x+1 cannot overflow
	switch {
	case joinsFloor && joinsCeil:
		floor.last = ceil.last
		s.root = treapDelete(s.root, ceil.first)
		s.spans--
	case joinsFloor:
		floor.last = x
	case joinsCeil:
		ceil.first = x // still above floor.last + 1: the order of keys holds
	default:
		s.insert(span{x, x})
	}
	return true
}

// remove takes x out of the set, shrinking or splitting its span; false if x was not in the set.
func (s *spanSet) remove(x u128) bool {
	n := s.find(x)
	switch {
	case n == nil:
		return false
	case n.first == n.last:
		s.root = treapDelete(s.root, x)
		s.spans--
	case x == n.first:
		n.first = x.next() // still below the next span's first: the order of keys holds
	case x == n.last:
		n.last = x.prev()
	default:
		rest := span{x.next(), n.last}
		n.last = x.prev()
		s.insert(rest)
	}
	return true
}

// insert adds sp as a span of its own; the caller guarantees it neither overlaps nor touches one.
func (s *spanSet) insert(sp span) {
	s.seed += 0x9e3779b97f4a7c15 // splitmix64
	z := s.seed
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	s.root = treapInsert(s.root, &spanNode{span: sp, prio: z ^ z>>31})
	s.spans++
}

// each calls fn for every span in ascending order until fn returns false.
func (s *spanSet) each(fn func(span) bool) { eachNode(s.root, fn) }

func eachNode(n *spanNode, fn func(span) bool) bool {
	for n != nil {
		if !eachNode(n.left, fn) || !fn(n.span) {
			return false
		}
		n = n.right
	}
	return true
}

// The treap keeps the binary-search-tree order on span.first and the heap order on prio, so its
// expected depth is O(log spans) whatever order spans arrive in.

func treapInsert(t, n *spanNode) *spanNode {
	if t == nil {
		return n
	}
	if n.prio > t.prio {
		n.left, n.right = treapSplit(t, n.first)
		return n
	}
	if n.first.less(t.first) {
		t.left = treapInsert(t.left, n)
	} else {
		t.right = treapInsert(t.right, n)
	}
	return t
}

// treapSplit splits t into the nodes whose first address is below k and the others.
func treapSplit(t *spanNode, k u128) (below, rest *spanNode) {
	if t == nil {
		return nil, nil
	}
	if t.first.less(k) {
		t.right, rest = treapSplit(t.right, k)
		return t, rest
	}
	below, t.left = treapSplit(t.left, k)
	return below, t
}

// treapMerge joins two treaps, every key of lo below every key of hi.
func treapMerge(lo, hi *spanNode) *spanNode {
	switch {
	case lo == nil:
		return hi
	case hi == nil:
		return lo
	case lo.prio > hi.prio:
		lo.right = treapMerge(lo.right, hi)
		return lo
	}
	hi.left = treapMerge(lo, hi.left)
	return hi
}

// treapDelete removes the node whose first address is k.
func treapDelete(t *spanNode, k u128) *spanNode {
	if t == nil {
		return nil
	}
	switch c := k.cmp(t.first); {
	case c < 0:
		t.left = treapDelete(t.left, k)
	case c > 0:
		t.right = treapDelete(t.right, k)
	default:
		return treapMerge(t.left, t.right)
	}
	return t
}
