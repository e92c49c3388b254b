package ipvs

// This file implements the mesh.Balancer methods. IPVS has no transactions: a plan is applied
// as new services and destinations first, then the mark table in one nftables batch (new marks
// point at services that exist; removed marks stop before their services go), then deletions.

import (
	"fmt"

	"github.com/shoal/shoal/mesh"
)

// Sync makes the kernel hold exactly s, changing only the VIPs and ports that differ from what
// the last successful Sync, Update or Repair applied. The first call — and the first after a failure —
// reads the kernel first, as Repair does, so that the marks, IPVS services and the connections
// IPVS tracks survive an agent restart.
func (b *Balancer) Sync(s mesh.State) (mesh.Changes, error) {
	if err := s.Validate(); err != nil {
		return mesh.Changes{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	got := b.applied
	if got == nil {
		var err error
		if got, err = b.read(); err != nil {
			return mesh.Changes{}, err
		}
	}
	return b.reconcile(s, got)
}

// Repair reads the kernel and fixes every VIP and port whose marks or IPVS service differ from
// what s needs; a mark table with the wrong frame is rebuilt.
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
	return b.reconcile(s, got)
}

// Inspect compares the kernel with what s needs, without changing anything.
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
	want, err := b.desired(s, got)
	if err != nil {
		return nil, err
	}
	return differences(b.cfg.Table, got, want), nil
}

// Read returns what the kernel programs: VIPs and ports with their labels (from the mark
// table's comments) and backends (from their IPVS services), and the SNAT address.
func (b *Balancer) Read() (mesh.State, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	got, err := b.read()
	if err != nil {
		return mesh.State{}, err
	}
	return got.state(), nil
}

// Remove deletes this package's IPVS services and the mark table.
func (b *Balancer) Remove() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forget()
	if err := b.markTable().remove(); err != nil {
		return err
	}
	h, err := openIPVS()
	if err != nil {
		return err
	}
	defer h.Close()
	m := newModel()
	if err := readServices(h, m); err != nil {
		return err
	}
	return serviceChanges{remove: sortedMarks(m.services)}.applyAfter(h)
}

func (b *Balancer) read() (*model, error) {
	m := newModel()
	if err := b.markTable().read(m); err != nil {
		return nil, err
	}
	h, err := openIPVS()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if err := readServices(h, m); err != nil {
		return nil, err
	}
	return m, nil
}

// reconcile applies what turns got into the model of s.
func (b *Balancer) reconcile(s mesh.State, got *model) (mesh.Changes, error) {
	want, err := b.desired(s, got)
	if err != nil {
		return mesh.Changes{}, err
	}
	p := makePlan(got, want)
	if !p.empty() {
		if err := b.apply(p); err != nil {
			b.forget()
			return mesh.Changes{}, err
		}
	}
	b.applied, b.index, b.cursor = want, mesh.NewIndex(s), cursorOf(want)
	return p.changes, nil
}

// forget drops what the Balancer knows of the kernel, after a failure or a Remove: the next Sync
// reads the kernel, and Update fails with mesh.ErrNoState until then.
func (b *Balancer) forget() {
	b.applied, b.index, b.cursor = nil, nil, nil
}

func (b *Balancer) apply(p *plan) error {
	if err := ensureSysctls(); err != nil {
		return err
	}
	h, err := openIPVS()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := p.services.applyBefore(h); err != nil {
		return err
	}
	if err := b.markTable().write(p.table, p.want); err != nil {
		return fmt.Errorf("mark table: %w", err)
	}
	return p.services.applyAfter(h)
}
