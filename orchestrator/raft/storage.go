package raft

// This file owns the node's durable state in one bbolt file: the raft log,
// the hard state, the latest snapshot, the node's raft ID and the member
// list. raft itself reads the log through a raft.MemoryStorage cache that the
// node keeps in step with this file (see ready.go); nothing here is read on
// the hot path except at restart.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

const dbFileName = "raft.db"

var (
	entriesBucket = []byte("entries")
	metaBucket    = []byte("meta")

	keyRaftID    = []byte("raft_id")
	keyHardState = []byte("hard_state")
	keySnapshot  = []byte("snapshot")
	keyMembers   = []byte("members")
	keyRemoved   = []byte("removed_self")
)

// diskStorage is the bbolt-backed durable state. Every write is one
// transaction and bbolt fsyncs on commit.
type diskStorage struct {
	db *bolt.DB
}

// openDiskStorage opens (creating if needed) the raft database in dir.
func openDiskStorage(dir string) (*diskStorage, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft state dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, dbFileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open raft database %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{entriesBucket, metaBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("init raft database %s: %w", path, err), db.Close())
	}
	return &diskStorage{db: db}, nil
}

func (s *diskStorage) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close raft database: %w", err)
	}
	return nil
}

func indexKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, i)
}

// raftID returns the persisted raft ID, 0 if none was saved.
func (s *diskStorage) raftID() (uint64, error) {
	var id uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(metaBucket).Get(keyRaftID)
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return fmt.Errorf("raft ID record has %d bytes, want 8", len(v))
		}
		id = binary.BigEndian.Uint64(v)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read raft ID: %w", err)
	}
	return id, nil
}

// saveIdentity persists the node's raft ID and the member list it starts
// with, and for a new group its initial log and hard state, in one
// transaction: a crash leaves either no state or a startable one.
func (s *diskStorage) saveIdentity(id uint64, members *api.RaftSnapshotData, hs *raftpb.HardState, ents []*raftpb.Entry) error {
	data, err := proto.Marshal(members)
	if err != nil {
		return fmt.Errorf("marshal member list: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if err := meta.Put(keyMembers, data); err != nil {
			return err
		}
		if err := putLog(tx, hs, ents); err != nil {
			return err
		}
		return meta.Put(keyRaftID, indexKey(id))
	})
	if err != nil {
		return fmt.Errorf("save raft ID %x: %w", id, err)
	}
	return nil
}

// saveMembers persists the member list (members and removed IDs; State is
// not used).
func (s *diskStorage) saveMembers(members *api.RaftSnapshotData) error {
	data, err := proto.Marshal(members)
	if err != nil {
		return fmt.Errorf("marshal member list: %w", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(metaBucket).Put(keyMembers, data)
	}); err != nil {
		return fmt.Errorf("save member list: %w", err)
	}
	return nil
}

// markRemoved records that this node was removed from the group, so a
// restart refuses to run it again.
func (s *diskStorage) markRemoved() error {
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(metaBucket).Put(keyRemoved, []byte{1})
	}); err != nil {
		return fmt.Errorf("record removal: %w", err)
	}
	return nil
}

// save durably writes one Ready's snapshot, entries and hard state in a
// single transaction. A snapshot replaces the whole log, so all entries are
// deleted before it is written. Entries overwrite any persisted entries at
// or after their first index (raft truncated a conflicting tail).
func (s *diskStorage) save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	hasHS := hs != nil
	hasSnap := snap.GetMetadata().GetIndex() != 0
	if !hasHS && !hasSnap && len(ents) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, entries := tx.Bucket(metaBucket), tx.Bucket(entriesBucket)
		if hasSnap {
			data, err := proto.Marshal(snap)
			if err != nil {
				return fmt.Errorf("marshal snapshot: %w", err)
			}
			if err := meta.Put(keySnapshot, data); err != nil {
				return fmt.Errorf("put snapshot: %w", err)
			}
			if err := deleteFrom(entries, 0); err != nil {
				return err
			}
		}
		return putLog(tx, hs, ents)
	})
	if err != nil {
		return fmt.Errorf("persist raft state: %w", err)
	}
	return nil
}

// putLog writes entries, overwriting persisted entries at or after the first
// one's index, and the hard state if not nil.
func putLog(tx *bolt.Tx, hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if len(ents) > 0 {
		entries := tx.Bucket(entriesBucket)
		if err := deleteFrom(entries, ents[0].GetIndex()); err != nil {
			return err
		}
		for _, e := range ents {
			data, err := proto.Marshal(e)
			if err != nil {
				return fmt.Errorf("marshal entry %d: %w", e.GetIndex(), err)
			}
			if err := entries.Put(indexKey(e.GetIndex()), data); err != nil {
				return fmt.Errorf("put entry %d: %w", e.GetIndex(), err)
			}
		}
	}
	if hs != nil {
		data, err := proto.Marshal(hs)
		if err != nil {
			return fmt.Errorf("marshal hard state: %w", err)
		}
		if err := tx.Bucket(metaBucket).Put(keyHardState, data); err != nil {
			return fmt.Errorf("put hard state: %w", err)
		}
	}
	return nil
}

// saveSnapshot durably writes a snapshot the node took itself and deletes
// the entries up to and including compactIndex (0: delete none).
func (s *diskStorage) saveSnapshot(snap *raftpb.Snapshot, compactIndex uint64) error {
	data, err := proto.Marshal(snap)
	if err != nil {
		return fmt.Errorf("marshal snapshot: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(metaBucket).Put(keySnapshot, data); err != nil {
			return fmt.Errorf("put snapshot: %w", err)
		}
		if compactIndex == 0 {
			return nil
		}
		return deleteThrough(tx.Bucket(entriesBucket), compactIndex)
	})
	if err != nil {
		return fmt.Errorf("persist snapshot at index %d: %w", snap.GetMetadata().GetIndex(), err)
	}
	return nil
}

// deleteFrom deletes the entries with index >= from.
func deleteFrom(b *bolt.Bucket, from uint64) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(indexKey(from)); k != nil; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	return deleteKeys(b, keys)
}

// deleteThrough deletes the entries with index <= through.
func deleteThrough(b *bolt.Bucket, through uint64) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= through; k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	return deleteKeys(b, keys)
}

func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
	}
	return nil
}

// diskState is everything a restart reads back.
type diskState struct {
	raftID    uint64
	removed   bool
	hardState *raftpb.HardState // nil if none was saved
	snapshot  *raftpb.Snapshot  // nil if none was saved
	entries   []*raftpb.Entry   // contiguous, after the snapshot's index
	members   *api.RaftSnapshotData
}

// load reads the whole durable state. Entries at or below the snapshot's
// index are skipped; a gap in the rest is reported as corruption.
func (s *diskStorage) load() (*diskState, error) {
	st := &diskState{members: &api.RaftSnapshotData{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if v := meta.Get(keyRaftID); len(v) == 8 {
			st.raftID = binary.BigEndian.Uint64(v)
		}
		st.removed = meta.Get(keyRemoved) != nil
		if v := meta.Get(keyHardState); v != nil {
			st.hardState = &raftpb.HardState{}
			if err := proto.Unmarshal(v, st.hardState); err != nil {
				return fmt.Errorf("unmarshal hard state: %w", err)
			}
		}
		if v := meta.Get(keySnapshot); v != nil {
			st.snapshot = &raftpb.Snapshot{}
			if err := proto.Unmarshal(v, st.snapshot); err != nil {
				return fmt.Errorf("unmarshal snapshot: %w", err)
			}
		}
		if v := meta.Get(keyMembers); v != nil {
			if err := proto.Unmarshal(v, st.members); err != nil {
				return fmt.Errorf("unmarshal member list: %w", err)
			}
		}
		after := st.snapshot.GetMetadata().GetIndex()
		c := tx.Bucket(entriesBucket).Cursor()
		for k, v := c.Seek(indexKey(after + 1)); k != nil; k, v = c.Next() {
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(v, e); err != nil {
				return fmt.Errorf("unmarshal entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			want := after + 1
			if n := len(st.entries); n > 0 {
				want = st.entries[n-1].GetIndex() + 1
			}
			if e.GetIndex() != want {
				return fmt.Errorf("raft log has a gap: entry %d where %d was expected", e.GetIndex(), want)
			}
			st.entries = append(st.entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load raft state: %w", err)
	}
	return st, nil
}
