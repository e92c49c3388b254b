package overlay

// This file owns the Manager: its construction and the calls that act on devices as a whole
// (Remove, Devices). Sync lives in sync.go, Update in update.go, Inspect in inspect.go.

import (
	"fmt"
	"log/slog"
	"sync"
)

// Manager programs the VXLAN overlay of the networks of one node, in the network namespace of
// the calling thread. Its methods are safe for concurrent use; they run one at a time.
type Manager struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex
	// applied is what the last successful Sync of each network applied, kept current by
	// Update, by device name; a network is absent until its first successful Sync and after
	// a failed Sync or Update, or its Remove.
	applied map[string]*networkState
}

// New returns a Manager for the node whose underlay address is cfg.LocalVTEP. It touches no
// kernel state.
func New(cfg Config) (*Manager, error) {
	cfg, err := validateConfig(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Manager{
		cfg:     cfg,
		log:     log.With("component", "overlay", "vtep", cfg.LocalVTEP),
		applied: make(map[string]*networkState),
	}, nil
}

// Remove deletes the network's VXLAN device; its entries go with it. A device already gone is
// fine; a link of that name that is not a VXLAN device is left alone and reported. The Manager
// forgets what it programmed for the network: Update returns ErrNotSynced until the next Sync.
func (m *Manager) Remove(networkID string) error {
	if err := validateNetworkID(networkID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	name := DeviceName(networkID)
	delete(m.applied, name)
	removed, err := deleteDevice(name)
	if err != nil {
		return fmt.Errorf("remove the overlay of network %s: %w", networkID, err)
	}
	if removed {
		m.log.Info("removed network overlay", "network", networkID, "device", name)
	}
	return nil
}

// Devices lists the VXLAN devices of shoal networks on this node (names starting "shx") with
// their VNIs, for removing those of networks that no longer exist.
func (m *Manager) Devices() ([]Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return listDevices()
}
