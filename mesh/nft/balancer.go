package nft

// This file implements the mesh.Balancer methods: each validates its input, reads the kernel or
// takes what the last call applied, and sends at most one batch (two when a piecewise batch
// fails and the table is rebuilt instead).

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/shoal/shoal/mesh"
)

// Sync makes the table hold exactly s, sending only the VIPs and ports that differ from what the
// last successful Sync or Repair applied; the first call rebuilds the table. When the piecewise
// batch fails — the kernel no longer holds what was applied, changed by hand — the table is
// rebuilt in a second batch and Changes.Rebuilt is set.
func (b *Balancer) Sync(s mesh.State) (mesh.Changes, error) {
	if err := s.Validate(); err != nil {
		return mesh.Changes{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := b.desired(s, b.applied)
	if b.applied == nil {
		return b.apply(rebuildBatch(want))
	}
	return b.applyOrRebuild(plan(b.applied, want))
}

// Repair reads the table and fixes, in one batch, every VIP and port whose objects differ from
// what s needs; a missing table, or one whose sets or hooked chains are not this package's, is
// rebuilt.
func (b *Balancer) Repair(s mesh.State) (mesh.Changes, error) {
	if err := s.Validate(); err != nil {
		return mesh.Changes{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	got, err := b.read()
	if err != nil {
		return mesh.Changes{}, err
	}
	return b.applyOrRebuild(plan(got, b.desired(s, got)))
}

// Inspect compares the table with what s needs, without changing anything.
func (b *Balancer) Inspect(s mesh.State) ([]mesh.Difference, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	got, err := b.read()
	if err != nil {
		return nil, err
	}
	return differences(b.cfg.Table, got, b.desired(s, got)), nil
}

// Read returns what the table programs: its VIPs and ports with the backends in slot order and
// the labels kept in rule comments, and the SNAT address. A missing table reads as an empty
// State.
func (b *Balancer) Read() (mesh.State, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	got, err := b.read()
	if err != nil {
		return mesh.State{}, err
	}
	return got.state(), nil
}

// Remove deletes the table, if it exists.
func (b *Balancer) Remove() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied = nil
	err := withConn(bufferSizes{send: baseBuffer, receive: baseBuffer}, func(c *nftables.Conn) error {
		t := b.table()
		c.AddTable(t) // so that the delete succeeds when the table is already gone
		c.DelTable(t)
		return c.Flush()
	})
	if err != nil {
		return fmt.Errorf("delete table ip %s: %w", b.cfg.Table, err)
	}
	return nil
}

// read reads the table; its sockets are opened here, in the calling thread's namespace.
func (b *Balancer) read() (*tableModel, error) {
	nl, err := dialDump()
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	var got *tableModel
	err = withConn(bufferSizes{send: baseBuffer, receive: baseBuffer}, func(c *nftables.Conn) error {
		var err error
		got, err = b.readTable(c, nl)
		return err
	})
	return got, err
}

// applyOrRebuild applies bt and, when bt was piecewise and failed, rebuilds the table.
func (b *Balancer) applyOrRebuild(bt *batch) (mesh.Changes, error) {
	if bt.empty() {
		b.applied = bt.want
		return mesh.Changes{}, nil
	}
	ch, err := b.apply(bt)
	if err == nil || bt.rebuild {
		return ch, err
	}
	ch, rebuildErr := b.apply(rebuildBatch(bt.want))
	if rebuildErr != nil {
		return mesh.Changes{}, errors.Join(err, fmt.Errorf("then rebuilding it: %w", rebuildErr))
	}
	return ch, nil
}

// apply sends bt in one batch and records what the table then holds.
func (b *Balancer) apply(bt *batch) (mesh.Changes, error) {
	t := b.table()
	err := withConn(bt.bufferSizes(), func(c *nftables.Conn) error {
		if err := bt.write(c, t); err != nil {
			return err
		}
		if err := c.Flush(); err != nil {
			messages, _ := bt.messages()
			return fmt.Errorf("send %d messages to table ip %s: %w", messages, t.Name, err)
		}
		return nil
	})
	if err != nil {
		b.applied = nil
		return mesh.Changes{}, err
	}
	b.applied = bt.want
	return bt.changes, nil
}
