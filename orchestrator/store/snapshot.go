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
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &api.StoreSnapshot{
		Nodes:    sortedTable[*api.Node](s, KindNode),
		Clusters: sortedTable[*api.Cluster](s, KindCluster),
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("encode store snapshot: %w", err)
	}
	return b, nil
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables = tables
	s.applied = index
	s.publish(Batch{Index: index, Restored: true})
	return nil
}

// sortedTable returns a table's objects (shared, not copied) sorted by ID, so
// snapshots of equal states are equal bytes.
func sortedTable[T Object](s *MemoryStore, k Kind) []T {
	out := make([]T, 0, len(s.tables[k]))
	for _, o := range s.tables[k] {
		out = append(out, o.(T))
	}
	sortByID(out)
	return out
}
