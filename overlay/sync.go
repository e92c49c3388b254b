package overlay

// This file owns Sync: ensure the device, dump its entries, diff them with the desired ones and
// apply the difference, deletions first; then remember what it applied, for Update.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/vishvananda/netlink"
)

// Sync programs one network to d and returns what it changed. It ensures the network's VXLAN
// device (VNI, local address LocalVTEP, the UDP port, learning off, proxy ARP on, no group, the
// MTU, up, enslaved to d.Network.Bridge, learning off on that bridge port), recreating it when
// its VNI, local address, port, learning, proxy or group are wrong. It then makes the device's
// entries exactly the desired ones: for every remote endpoint a permanent FDB entry MAC → VTEP,
// a permanent neighbour entry IP → MAC and a static entry MAC → the device's port in the bridge's
// forwarding table (so that frames to it go to the device alone, not to every port), for every
// peer and every VTEP of a remote endpoint an all-zeros FDB destination. Bridge entries on the
// device's port for other MACs are removed. It diffs with the kernel, so a second Sync with the same d
// changes nothing. After a successful Sync the Manager remembers d's endpoints and peers, for
// Update.
//
// Bad input is refused with a *FieldError before anything changes. When the bridge does not
// exist, Sync changes nothing and returns an error wrapping ErrNoBridge. When an entry cannot be
// programmed, Sync still tries the others and returns what it changed with the joined errors.
// After any error but a refused input, Update returns ErrNotSynced until a Sync succeeds.
func (m *Manager) Sync(d Desired) (Changes, error) {
	w, err := validateDesired(d, m.cfg)
	if err != nil {
		return Changes{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.log.With("network", d.Network.ID, "device", w.device.name)
	// Whatever fails from here may leave the kernel anywhere between the old state and d.
	delete(m.applied, w.device.name)

	br, err := lookupBridge(w.device.bridge)
	if err != nil {
		return Changes{}, fmt.Errorf("sync network %s: %w", d.Network.ID, err)
	}
	var ch Changes
	dev, created, updated, err := ensureDevice(w.device, br, log)
	ch.DeviceCreated, ch.DeviceUpdated = created, updated
	if err != nil {
		return ch, fmt.Errorf("sync network %s: %w", d.Network.ID, err)
	}
	h, err := openHandle()
	if err != nil {
		return ch, fmt.Errorf("sync network %s: %w", d.Network.ID, err)
	}
	defer h.Close()
	p, err := planEntries(h, dev.Index, dev.HardwareAddr, w)
	if err != nil {
		return ch, fmt.Errorf("sync network %s: device %q: %w", d.Network.ID, w.device.name, err)
	}
	err = p.apply(h, dev.Index, &ch, log)
	if ch.Changed() {
		log.Info("synced network overlay", "added", ch.Added, "replaced", ch.Replaced, "removed", ch.Removed,
			"device_created", ch.DeviceCreated, "device_updated", ch.DeviceUpdated)
	}
	if err != nil {
		return ch, fmt.Errorf("sync network %s: device %q: %w", d.Network.ID, w.device.name, err)
	}
	m.applied[w.device.name] = newNetworkState(d.Network.ID, dev.Index, m.cfg.LocalVTEP, w)
	return ch, nil
}

// entryPlan is the comparison of a device's entries with the wanted ones.
type entryPlan struct {
	fdb    []fdbDiff
	neigh  []neighDiff
	bridge []bridgeDiff
}

// planEntries dumps the entries of the device (linkIndex, its MAC ownMAC) and compares them with
// w's.
func planEntries(h *netlink.Handle, linkIndex int, ownMAC net.HardwareAddr, w wanted) (entryPlan, error) {
	haveFDB, haveBridge, err := listFDB(h, linkIndex, ownMAC)
	if err != nil {
		return entryPlan{}, err
	}
	haveNeigh, err := listNeigh(h, linkIndex)
	if err != nil {
		return entryPlan{}, err
	}
	return entryPlan{fdb: diffFDB(w.fdb, haveFDB), neigh: diffNeigh(w.neigh, haveNeigh), bridge: diffBridge(w.bridgeEntries(), haveBridge)}, nil
}

// apply makes the kernel as planned: extra entries go first, so that a unicast MAC holds one
// destination when it is replaced, then wrong ones are replaced, then missing ones added. Bridge
// entries are removed first and set after the FDB entries of the same pass; the order is
// tidiness, not correctness: a frame the device gets for a MAC it has no destination for goes to
// every peer in the all-zeros entries. It
// counts into ch what it did and joins the errors of the entries it could not change.
func (p entryPlan) apply(h *netlink.Handle, linkIndex int, ch *Changes, log *slog.Logger) error {
	var errs []error
	for _, d := range p.bridge {
		if d.status == StatusExtra {
			removed, err := delBridge(h, linkIndex, d.have.mac)
			errs = append(errs, err)
			if removed {
				ch.Removed++
			}
			log.Debug("removed bridge entry", "mac", macOf(d.have.mac), "kind", d.have.kind, "already_gone", err == nil && !removed)
		}
	}
	for _, d := range p.fdb {
		if d.status == StatusExtra {
			removed, err := delFDB(h, linkIndex, *d.have)
			errs = append(errs, err)
			if removed {
				ch.Removed++
			}
			log.Debug("removed FDB entry", "mac", macOf(d.have.mac), "dst", d.have.dst, "already_gone", err == nil && !removed)
		}
	}
	for _, d := range p.neigh {
		if d.status == StatusExtra {
			removed, err := delNeigh(h, linkIndex, *d.have)
			errs = append(errs, err)
			if removed {
				ch.Removed++
			}
			log.Debug("removed neighbour entry", "ip", d.have.ip, "mac", macText(d.have.mac), "already_gone", err == nil && !removed)
		}
	}
	for _, status := range []Status{StatusWrong, StatusMissing} {
		count := &ch.Replaced
		if status == StatusMissing {
			count = &ch.Added
		}
		for _, d := range p.fdb {
			if d.status != status {
				continue
			}
			if err := setFDB(h, linkIndex, *d.want); err != nil {
				errs = append(errs, err)
				continue
			}
			*count++
			log.Debug("programmed FDB entry", "was", status, "mac", macOf(d.want.mac), "dst", d.want.dst, "detail", d.detail)
		}
		for _, d := range p.neigh {
			if d.status != status {
				continue
			}
			if err := setNeigh(h, linkIndex, *d.want); err != nil {
				errs = append(errs, err)
				continue
			}
			*count++
			log.Debug("programmed neighbour entry", "was", status, "ip", d.want.ip, "mac", d.want.mac, "detail", d.detail)
		}
		for _, d := range p.bridge {
			if d.status != status {
				continue
			}
			if err := setBridge(h, linkIndex, d.want.mac); err != nil {
				errs = append(errs, err)
				continue
			}
			*count++
			log.Debug("programmed bridge entry", "was", status, "mac", macOf(d.want.mac), "detail", d.detail)
		}
	}
	return errors.Join(errs...)
}
