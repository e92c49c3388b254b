package raft

// This file owns the member list: who is in the group (raft ID → node ID and
// address) and which raft IDs were removed. The Ready loop changes it when
// conf changes and snapshots apply; everyone else reads copies. The
// operations that change membership live in membership.go.

import (
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

type memberList struct {
	mu      sync.Mutex
	members map[uint64]*api.RaftMember
	removed map[uint64]bool
}

func newMemberList() *memberList {
	return &memberList{members: map[uint64]*api.RaftMember{}, removed: map[uint64]bool{}}
}

// replace sets the list to data's members and removed IDs. Removed IDs are
// never forgotten: those already known stay removed.
func (l *memberList) replace(data *api.RaftSnapshotData) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.members = map[uint64]*api.RaftMember{}
	for _, id := range data.GetRemoved() {
		l.removed[id] = true
	}
	for _, m := range data.GetMembers() {
		if !l.removed[m.GetRaftId()] {
			l.members[m.GetRaftId()] = proto.CloneOf(m)
		}
	}
}

// add records m as a member. It reports false, and changes nothing, if m's
// raft ID was removed before: IDs are never reused, so such an add can only
// be a replay of an old log entry.
func (l *memberList) add(m *api.RaftMember) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed[m.GetRaftId()] {
		return false
	}
	l.members[m.GetRaftId()] = proto.CloneOf(m)
	return true
}

// remove drops id from the members and remembers it as removed.
func (l *memberList) remove(id uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.members, id)
	l.removed[id] = true
}

func (l *memberList) get(id uint64) (*api.RaftMember, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.members[id]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(m), true
}

func (l *memberList) isRemoved(id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.removed[id]
}

// used reports whether id is a member or was one.
func (l *memberList) used(id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.members[id]
	return ok || l.removed[id]
}

// byNodeID returns the member whose node ID is nodeID.
func (l *memberList) byNodeID(nodeID string) (*api.RaftMember, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.members {
		if m.GetNodeId() == nodeID {
			return proto.CloneOf(m), true
		}
	}
	return nil, false
}

// list returns copies of the members sorted by raft ID.
func (l *memberList) list() []*api.RaftMember {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*api.RaftMember, 0, len(l.members))
	for _, m := range l.members {
		out = append(out, proto.CloneOf(m))
	}
	slices.SortFunc(out, func(a, b *api.RaftMember) int {
		switch {
		case a.GetRaftId() < b.GetRaftId():
			return -1
		case a.GetRaftId() > b.GetRaftId():
			return 1
		}
		return 0
	})
	return out
}

// removedIDs returns the removed raft IDs, sorted.
func (l *memberList) removedIDs() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]uint64, 0, len(l.removed))
	for id := range l.removed {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// data returns the list as it is persisted and put in snapshots (without
// state).
func (l *memberList) data() *api.RaftSnapshotData {
	return &api.RaftSnapshotData{Members: l.list(), Removed: l.removedIDs()}
}
