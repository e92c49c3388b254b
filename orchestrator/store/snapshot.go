package store

// This file owns the store's raft snapshot: the whole state encoded as one
// StoreSnapshot, and its restore.

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// Snapshot encodes the current state.
func (s *MemoryStore) Snapshot() ([]byte, error) {
	return s.SnapshotLater()()
}

// SnapshotLater copies the tables (pointers only: stored objects are never
// changed in place, a change stores a new object) and returns a function
// that encodes that copy; raft runs it off its loop, so a large store does
// not hold up heartbeats.
func (s *MemoryStore) SnapshotLater() func() ([]byte, error) {
	s.mu.RLock()
	nodes := tableObjects[*api.Node](s, KindNode)
	clusters := tableObjects[*api.Cluster](s, KindCluster)
	services := tableObjects[*api.Service](s, KindService)
	tasks := tableObjects[*api.Task](s, KindTask)
	networks := tableObjects[*api.Network](s, KindNetwork)
	bindings := tableObjects[*api.IPBinding](s, KindBinding)
	s.mu.RUnlock()
	return func() ([]byte, error) {
		sortByID(nodes)
		sortByID(clusters)
		sortByID(services)
		sortByID(tasks)
		sortByID(networks)
		sortByID(bindings)
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&api.StoreSnapshot{
			Nodes: nodes, Clusters: clusters, Services: services, Tasks: tasks, Networks: networks, Bindings: bindings,
		})
		if err != nil {
			return nil, fmt.Errorf("encode store snapshot: %w", err)
		}
		return b, nil
	}
}

// Restore replaces the state with a snapshot's, taken at index.
func (s *MemoryStore) Restore(index uint64, state []byte) error {
	var snap api.StoreSnapshot
	if err := proto.Unmarshal(state, &snap); err != nil {
		return fmt.Errorf("decode store snapshot at index %d: %w", index, err)
	}
	tables := make(map[Kind]map[string]Object, len(kinds))
	for _, k := range kinds {
		tables[k] = make(map[string]Object)
	}
	for _, n := range snap.Nodes {
		tables[KindNode][n.Id] = n
	}
	for _, c := range snap.Clusters {
		tables[KindCluster][c.Id] = c
	}
	for _, sv := range snap.Services {
		tables[KindService][sv.Id] = sv
	}
	for _, n := range snap.Networks {
		tables[KindNetwork][n.Id] = n
	}
	ix := make(indexes)
	for _, t := range snap.Tasks {
		tables[KindTask][t.Id] = t
		ix.add(t)
	}
	for _, b := range snap.Bindings {
		tables[KindBinding][b.Id] = b
		ix.add(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables = tables
	s.index = ix
	s.applied = index
	s.publish(Batch{Index: index, Restored: true})
	return nil
}

// tableObjects returns a table's objects (shared, not copied), unsorted;
// s.mu is held.
func tableObjects[T Object](s *MemoryStore, k Kind) []T {
	out := make([]T, 0, len(s.tables[k]))
	for _, o := range s.tables[k] {
		out = append(out, o.(T))
	}
	return out
}
