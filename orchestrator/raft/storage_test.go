package raft

import (
	"slices"
	"testing"

	raftpb "go.etcd.io/raft/v3/raftpb"

	"github.com/shoal/shoal/api"
)

func ents(term uint64, from, to uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &raftpb.Entry{Term: new(term), Index: new(i), Type: raftpb.EntryNormal.Enum(), Data: []byte{byte(i)}})
	}
	return out
}

func snapAt(index, term uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data:     []byte("state"),
		Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: &raftpb.ConfState{Voters: []uint64{1}}},
	}
}

// step is one write to the disk storage.
type step struct {
	hs        *raftpb.HardState
	ents      []*raftpb.Entry
	snap      *raftpb.Snapshot // received snapshot, through save
	ownSnap   *raftpb.Snapshot // taken by the node, through saveSnapshot
	compactTo uint64
}

func TestDiskStorageRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		steps      []step
		wantIdx    []uint64 // loaded entry indexes
		wantTerms  []uint64
		wantSnap   uint64
		wantCommit uint64
	}{
		{
			name:    "append",
			steps:   []step{{ents: ents(1, 1, 3)}, {ents: ents(1, 4, 5), hs: &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(4))}}},
			wantIdx: []uint64{1, 2, 3, 4, 5}, wantTerms: []uint64{1, 1, 1, 1, 1}, wantCommit: 4,
		},
		{
			name:    "conflicting tail is replaced",
			steps:   []step{{ents: ents(1, 1, 5)}, {ents: ents(2, 3, 4)}},
			wantIdx: []uint64{1, 2, 3, 4}, wantTerms: []uint64{1, 1, 2, 2},
		},
		{
			name:    "received snapshot replaces the whole log",
			steps:   []step{{ents: ents(1, 1, 9)}, {snap: snapAt(6, 1), ents: ents(2, 7, 7), hs: &raftpb.HardState{Term: new(uint64(2)), Commit: new(uint64(6))}}},
			wantIdx: []uint64{7}, wantTerms: []uint64{2}, wantSnap: 6, wantCommit: 6,
		},
		{
			name:    "own snapshot compacts and keeps the rest",
			steps:   []step{{ents: ents(1, 1, 10)}, {ownSnap: snapAt(8, 1), compactTo: 5}},
			wantIdx: []uint64{9, 10}, wantTerms: []uint64{1, 1}, wantSnap: 8,
		},
		{
			name:    "own snapshot keeping nothing",
			steps:   []step{{ents: ents(1, 1, 4)}, {ownSnap: snapAt(4, 1), compactTo: 4}, {ents: ents(1, 5, 6)}},
			wantIdx: []uint64{5, 6}, wantTerms: []uint64{1, 1}, wantSnap: 4,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openDiskStorage(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.saveIdentity(7, &api.RaftSnapshotData{Members: []*api.RaftMember{{RaftId: 7, NodeId: "n", Addr: "a"}}}, nil, nil); err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				if st.ownSnap != nil {
					err = s.saveSnapshot(st.ownSnap, st.compactTo)
				} else {
					err = s.save(st.hs, st.ents, st.snap)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			// Reopen: everything comes from the file.
			s, err = openDiskStorage(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			got, err := s.load()
			if err != nil {
				t.Fatal(err)
			}
			var idx, terms []uint64
			for _, e := range got.entries {
				idx, terms = append(idx, e.GetIndex()), append(terms, e.GetTerm())
			}
			if !slices.Equal(idx, tc.wantIdx) || !slices.Equal(terms, tc.wantTerms) {
				t.Errorf("entries: indexes %v terms %v, want %v %v", idx, terms, tc.wantIdx, tc.wantTerms)
			}
			if si := got.snapshot.GetMetadata().GetIndex(); si != tc.wantSnap {
				t.Errorf("snapshot index %d, want %d", si, tc.wantSnap)
			}
			if c := got.hardState.GetCommit(); c != tc.wantCommit {
				t.Errorf("commit %d, want %d", c, tc.wantCommit)
			}
			if got.raftID != 7 || len(got.members.GetMembers()) != 1 || got.removed {
				t.Errorf("identity: raft ID %d, %d members, removed %v", got.raftID, len(got.members.GetMembers()), got.removed)
			}
		})
	}
}

func TestDiskStorageDetectsGap(t *testing.T) {
	s, err := openDiskStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if err := s.save(nil, ents(1, 1, 3), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.save(nil, ents(1, 5, 6), nil); err != nil { // index 4 missing
		t.Fatal(err)
	}
	if _, err := s.load(); err == nil {
		t.Fatal("load of a log with a gap succeeded")
	}
}

func TestDiskStorageRemovedMark(t *testing.T) {
	s, err := openDiskStorage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if err := s.markRemoved(); err != nil {
		t.Fatal(err)
	}
	st, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if !st.removed {
		t.Fatal("removal mark not loaded")
	}
}
