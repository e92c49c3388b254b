package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// errHostnameTaken is what uniqueHostnames refuses with.
var errHostnameTaken = errors.New("hostname taken")

// uniqueHostnames is a Check: no two nodes share a hostname. It records
// what it was called with.
type uniqueHostnames struct {
	calls []string // "old→new" hostnames, "" for none
}

func (u *uniqueHostnames) check(after ReadTx, prev, n *api.Node) error {
	u.calls = append(u.calls, prev.GetDescription().GetHostname()+"→"+n.GetDescription().GetHostname())
	for _, other := range after.Nodes() {
		if other.Id != n.Id && other.GetDescription().GetHostname() == n.GetDescription().GetHostname() {
			return fmt.Errorf("node %s: %w by %s", n.Id, errHostnameTaken, other.Id)
		}
	}
	return nil
}

// proposeUnapplied stages fn's changes against s as it is now and returns
// the payload, so a test can race transactions made on the same state.
func proposeUnapplied(t *testing.T, s *MemoryStore, fn func(Tx) error) []byte {
	t.Helper()
	tx := newTx(s, time.Now())
	s.mu.RLock()
	err := fn(tx)
	s.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := tx.payload()
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// Two transactions made on the same state each pass every read they made;
// only a check run as each applies can refuse the second one, and it must
// do so alike on every manager, the ones replaying the log included.
func TestCheckRefusesTheSecondOfTwoRacingCreates(t *testing.T) {
	ctx := context.Background()
	u1, u2 := &uniqueHostnames{}, &uniqueHostnames{}
	s1, s2 := New(CheckOf(u1.check)), New(CheckOf(u2.check))
	p := &logProposer{stores: []*MemoryStore{s1, s2}, local: s1}
	s1.SetProposer(p)
	s2.SetProposer(p)

	first := proposeUnapplied(t, s1, func(tx Tx) error { return tx.Create(node("n1", "web")) })
	second := proposeUnapplied(t, s1, func(tx Tx) error { return tx.Create(node("n2", "web")) })
	if res, _ := p.Propose(ctx, first); res != nil {
		t.Fatalf("first create refused: %v", res)
	}
	res, _ := p.Propose(ctx, second)
	if err, _ := res.(error); !errors.Is(err, errHostnameTaken) || !errors.Is(err, ErrRefused) ||
		errors.Is(err, ErrVersionConflict) || !strings.Contains(err.Error(), "node n2: hostname taken by n1") {
		t.Fatalf("second create: result %v, want the check's refusal", res)
	}

	// A third manager replaying the log from the start ends where the
	// others are.
	s3 := New(CheckOf((&uniqueHostnames{}).check))
	for i, payload := range [][]byte{first, second} {
		s3.Apply(uint64(i+1), payload)
	}
	for i, s := range []*MemoryStore{s1, s2, s3} {
		var ids []string
		s.View(func(tx ReadTx) {
			for _, n := range tx.Nodes() {
				ids = append(ids, n.Id)
			}
		})
		if !equal(ids, []string{"n1"}) || s.AppliedIndex() != 2 {
			t.Errorf("manager %d holds nodes %v at index %d, want [n1] at 2", i+1, ids, s.AppliedIndex())
		}
	}
}

func TestCheckSeesTheWholeTransaction(t *testing.T) {
	ctx := context.Background()
	u := &uniqueHostnames{}
	s := New(CheckOf(u.check))
	s.SetProposer(&logProposer{stores: []*MemoryStore{s}, local: s})
	if err := s.Update(ctx, func(tx Tx) error { return tx.Create(node("n1", "a")) }); err != nil {
		t.Fatal(err)
	}
	ch := s.Watch(ctx)

	// Two creates in one transaction clash with each other.
	err := s.Update(ctx, func(tx Tx) error {
		if err := tx.Create(node("n2", "b")); err != nil {
			return err
		}
		return tx.Create(node("n3", "b"))
	})
	if !errors.Is(err, errHostnameTaken) {
		t.Fatalf("two nodes named b in one transaction: %v, want refused", err)
	}
	// Renaming n1 away frees its name for a node created alongside.
	u.calls = nil
	err = s.Update(ctx, func(tx Tx) error {
		n1 := tx.Node("n1")
		n1.Description.Hostname = "z"
		if err := tx.Update(n1); err != nil {
			return err
		}
		if err := tx.Create(&api.Task{Id: "t1", NodeId: "n4"}); err != nil {
			return err // a kind the check does not judge
		}
		return tx.Create(node("n4", "a"))
	})
	if err != nil {
		t.Fatalf("swap of names in one transaction: %v", err)
	}
	if !equal(u.calls, []string{"a→z", "→a"}) {
		t.Errorf("the check saw %v, want the update with its old state, then the create", u.calls)
	}
	// The refused transaction published nothing; the accepted one did.
	if b := <-ch; len(b.Events) != 3 {
		t.Errorf("first batch after the refusal has %d events, want the 3 of the accepted transaction", len(b.Events))
	}
	s.View(func(tx ReadTx) {
		if tx.Node("n2") != nil || tx.Node("n3") != nil || tx.Node("n4") == nil {
			t.Errorf("nodes %v after a refused and an accepted transaction", tx.Nodes())
		}
	})
}

// TestEntriesWrittenBeforeTheChecksApplyUnchecked: an entry from a log
// written before the checks existed (checks_version 0) applies as it did
// then, so a manager replaying that log ends where the others are; the same
// change written today is refused.
func TestEntriesWrittenBeforeTheChecksApplyUnchecked(t *testing.T) {
	s := New(CheckOf((&uniqueHostnames{}).check))
	first := proposeUnapplied(t, s, func(tx Tx) error { return tx.Create(node("n1", "web")) })
	second := proposeUnapplied(t, s, func(tx Tx) error { return tx.Create(node("n2", "web")) })
	var old api.StoreTransaction
	if err := proto.Unmarshal(second, &old); err != nil {
		t.Fatal(err)
	}
	if old.ChecksVersion != ChecksVersion {
		t.Fatalf("a new entry says checks_version %d, want %d", old.ChecksVersion, ChecksVersion)
	}
	old.ChecksVersion = 0
	unchecked, err := proto.Marshal(&old)
	if err != nil {
		t.Fatal(err)
	}
	if res := s.Apply(1, first); res != nil {
		t.Fatalf("first: %v", res)
	}
	if res, _ := s.Apply(2, second).(error); !errors.Is(res, ErrRefused) {
		t.Fatalf("today's entry: %v, want refused", res)
	}
	if res := s.Apply(3, unchecked); res != nil {
		t.Fatalf("an entry from before the checks: %v, want applied", res)
	}
	var n int
	s.View(func(tx ReadTx) { n = len(tx.Nodes()) })
	if n != 2 {
		t.Fatalf("%d nodes, want the 2 the old log wrote", n)
	}
}
