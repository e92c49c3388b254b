package nft

// This file implements the mesh.Balancer methods but Update (update.go): each validates its
// input, reads the kernel or takes what the last call applied, and sends at most one batch (two
// when a piecewise batch fails and the table is rebuilt instead).

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/shoal/shoal/mesh"
)

// Sync makes the table hold exactly s, sending only the VIPs and ports that differ from what the
// last successful Sync, Update or Repair applied; the first call rebuilds the table. When the
// piecewise batch fails — the kernel no longer holds what was applied, changed by hand — the
// table is rebuilt in a second batch and Changes.Rebuilt is set.
func (b *Balancer) Sync(s mesh.State) (mesh.Changes, error) {
	if err := s.Validate(); err != nil {
		return mesh.Changes{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := b.desired(s, b.applied)
	var bt *batch
	if b.applied == nil {
		bt = rebuildBatch(want)
	} else {
		bt = plan(b.applied, want)
	}
	ch, err := b.applyOrRebuild(bt)
	if err != nil {
		return mesh.Changes{}, err
	}
	b.indexAfterSync(s, bt, ch.Rebuilt)
	return ch, nil
}

// indexAfterSync makes the index the State s a Sync applied with bt: from the VIPs and ports bt
// changed when it was applied piece by piece (the others were the same already), from the
// whole of s after a rebuild.
func (b *Balancer) indexAfterSync(s mesh.State, bt *batch, rebuilt bool) {
	if rebuilt || b.index == nil {
		b.index = mesh.NewIndex(s)
		return
	}
	b.index.Apply(bt.stateChange())
	b.index.SetSNAT(s.SNAT)
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
	ch, err := b.applyOrRebuild(plan(got, b.desired(s, got)))
	if err != nil {
		return mesh.Changes{}, err
	}
	b.index = mesh.NewIndex(s)
	return ch, nil
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
	b.forget()
	err := b.sockets.withConn(bufferSizes{send: baseBuffer, receive: baseBuffer}, func(c *nftables.Conn) error {
		t := b.table()
		c.AddTable(t) // so that the delete succeeds when the table is already gone
		c.DelTable(t)
		return c.Flush()
	})
	b.sockets.close()
	if err != nil {
		return fmt.Errorf("delete table ip %s: %w", b.cfg.Table, err)
	}
	return nil
}

// read reads the table.
func (b *Balancer) read() (*tableModel, error) {
	nl, err := b.sockets.withDump()
	if err != nil {
		return nil, err
	}
	var got *tableModel
	err = b.sockets.withConn(bufferSizes{send: baseBuffer, receive: baseBuffer}, func(c *nftables.Conn) error {
		var err error
		got, err = b.readTable(c, nl)
		return err
	})
	if err != nil {
		// A dump cut short leaves replies behind: the next read gets a fresh socket.
		b.sockets.closeDump()
	}
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
	if err := b.send(bt); err != nil {
		b.forget()
		return mesh.Changes{}, err
	}
	b.applied = bt.want
	return bt.changes, nil
}

// send sends bt in one batch.
func (b *Balancer) send(bt *batch) error {
	t := b.table()
	return b.sockets.withConn(bt.bufferSizes(), func(c *nftables.Conn) error {
		if err := bt.write(c, t); err != nil {
			return err
		}
		if err := c.Flush(); err != nil {
			messages, _ := bt.messages()
			return fmt.Errorf("send %d messages to table ip %s: %w", messages, t.Name, err)
		}
		return nil
	})
}

// forget drops what the Balancer knows of the table, after a failure or a Remove: the next Sync
// rebuilds it, and Update fails with mesh.ErrNoState until then.
func (b *Balancer) forget() {
	b.applied, b.index = nil, nil
}
