package manager

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
)

// TestLookupNode checks what the authorizer learns about callers: before
// the store holds the cluster, a stranger is undecidable (never "removed",
// never a manager); afterwards a missing node is removed and a present one
// is found.
func TestLookupNode(t *testing.T) {
	m := newTestManager(t)

	// Not started: no state, no raft members.
	if n, err := m.lookupNode("stranger"); err == nil || errors.Is(err, ca.ErrNodeNotFound) || n != nil {
		t.Fatalf("uninitialised manager: lookup of a stranger = %v, %v; want an undecided error", n, err)
	}

	runTestManager(t, m)

	n, err := m.lookupNode("node-1")
	if err != nil || n.GetRole() != api.NodeRole_NODE_ROLE_MANAGER || n.GetSpec().GetDesiredRole() != api.NodeRole_NODE_ROLE_MANAGER {
		t.Fatalf("lookup of this manager = %v, %v", n, err)
	}
	if _, err := m.lookupNode("stranger"); !errors.Is(err, ca.ErrNodeNotFound) {
		t.Fatalf("initialised manager: lookup of a stranger = %v, want ErrNodeNotFound", err)
	}
}

// newTestManager builds, without starting it, the first manager of a new
// cluster: node-1 of cluster-1.
func newTestManager(t *testing.T) *Manager {
	t.Helper()
	dir := t.TempDir()
	rootCA, sc, err := ca.Bootstrap("cluster-1", "node-1", time.Hour, filepath.Join(dir, "certificates"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{
		StateDir:        dir,
		ListenRemoteAPI: "127.0.0.1:0",
		ControlSocket:   filepath.Join(dir, "control.sock"),
		Security:        sc,
		Description:     &api.NodeDescription{Hostname: "node-1"},
		Bootstrap:       &Bootstrap{ClusterID: "cluster-1", RootCA: rootCA, Spec: DefaultClusterSpec("test")},
		TickInterval:    10 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}

	return m
}

// runTestManager runs m until the test ends and waits until it is ready.
func runTestManager(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-m.Ready():
	case err := <-done:
		t.Fatalf("manager stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("manager never became ready")
	}

}

// startTestManager is newTestManager, running.
func startTestManager(t *testing.T) *Manager {
	t.Helper()
	m := newTestManager(t)
	runTestManager(t, m)
	return m
}
