package cni

// This file owns the Manager: its configuration, the libcni runtime it drives,
// and the networks the node knows. attach.go adds and checks a task's
// attachments, detach.go deletes cached ones (DetachSandbox, GC), status.go asks
// the plugins whether they can serve.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

const (
	// DefaultBinDir is where CNI plugins are looked for when Config.BinDirs is
	// empty.
	DefaultBinDir = "/opt/cni/bin"
	// DefaultMTU leaves room for VXLAN's 50 bytes on a 1500-byte underlay.
	DefaultMTU = 1450
	minMTU     = 68 // IPv4's minimum
	maxMTU     = 65535
)

// Config configures a Manager.
type Config struct {
	// BinDirs are searched in order for plugin binaries; default
	// [DefaultBinDir].
	BinDirs []string
	// CacheDir holds libcni's cache of attachments (required). It belongs under
	// the agent's state directory: DetachSandbox and GC after a restart read it.
	CacheDir string
	// MTU of the bridges and interfaces shoal-bridge creates; default
	// DefaultMTU.
	MTU int
	// Log receives the Manager's records and the plugins' stderr; default
	// slog.Default().
	Log *slog.Logger
}

// Manager attaches task sandboxes to networks with CNI. It is safe for
// concurrent use; see the package doc for the caller's duties.
type Manager struct {
	cni *libcni.CNIConfig
	mtu int
	log *slog.Logger

	// gcMu keeps GC apart from ADDs and DELs: AttachTask and DetachSandbox
	// hold it shared, GC exclusively, so a plugin GC never sees an
	// attachment that is half added and not yet cached.
	gcMu sync.RWMutex

	mu       sync.Mutex
	networks map[string]*api.Network // by ID; guarded by mu
}

// New returns a Manager for cfg, creating cfg.CacheDir if needed.
func New(cfg Config) (*Manager, error) {
	if cfg.CacheDir == "" {
		return nil, errors.New("cni: Config.CacheDir is required")
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < minMTU || cfg.MTU > maxMTU {
		return nil, fmt.Errorf("cni: Config.MTU %d is outside [%d, %d]", cfg.MTU, minMTU, maxMTU)
	}
	if len(cfg.BinDirs) == 0 {
		cfg.BinDirs = []string{DefaultBinDir}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("cni: create cache directory: %w", err)
	}
	log := cfg.Log.With("component", "cni")
	// An explicit Exec: libcni's lazily created default is not safe for
	// concurrent first use.
	exec := &invoke.DefaultExec{
		RawExec:       &invoke.RawExec{Stderr: stderrLog{log}},
		PluginDecoder: version.PluginDecoder{},
	}
	return &Manager{
		cni:      libcni.NewCNIConfigWithCacheDir(append([]string(nil), cfg.BinDirs...), cfg.CacheDir, exec),
		mtu:      cfg.MTU,
		log:      log,
		networks: map[string]*api.Network{},
	}, nil
}

// SetNetworks records networks the node's tasks use, as the agent receives
// them with its assignments: each replaces the one of the same ID the Manager
// knows, unless that one is of a later version (Meta.Version). Networks not in
// nets stay known. The Manager keeps copies.
func (m *Manager) SetNetworks(nets []*api.Network) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range nets {
		if n.GetId() == "" {
			continue
		}
		if old, ok := m.networks[n.GetId()]; ok && old.GetMeta().GetVersion() > n.GetMeta().GetVersion() {
			continue
		}
		m.networks[n.GetId()] = proto.CloneOf(n)
	}
}

// network returns the known network with this ID, or nil.
func (m *Manager) network(id string) *api.Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.networks[id]
}

// knownNetworks returns the known networks, by ID.
func (m *Manager) knownNetworks() []*api.Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	nets := make([]*api.Network, 0, len(m.networks))
	for _, id := range slices.Sorted(maps.Keys(m.networks)) {
		nets = append(nets, m.networks[id])
	}
	return nets
}

// stderrLog logs what a plugin wrote to stderr (libcni hands over all of one
// run's output in one Write; a failing run's output is in its error instead).
type stderrLog struct{ log *slog.Logger }

func (w stderrLog) Write(p []byte) (int, error) {
	if msg := bytes.TrimSpace(p); len(msg) > 0 {
		w.log.LogAttrs(context.Background(), slog.LevelInfo, "plugin stderr", slog.String("output", string(msg)))
	}
	return len(p), nil
}
