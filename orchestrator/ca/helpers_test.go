package ca

import (
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

const (
	manager = api.NodeRole_NODE_ROLE_MANAGER
	worker  = api.NodeRole_NODE_ROLE_WORKER
)

func newTestRoot(t *testing.T, clusterID string) *RootCA {
	t.Helper()
	root, err := NewRootCA(clusterID)
	if err != nil {
		t.Fatalf("NewRootCA: %v", err)
	}
	return root
}

// issueTestCert returns a node certificate signed by root and its key.
func issueTestCert(t *testing.T, root *RootCA, nodeID string, role api.NodeRole, clusterID string, expiry time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	keyPEM, csrPEM, err := GenerateKeyAndCSR()
	if err != nil {
		t.Fatalf("GenerateKeyAndCSR: %v", err)
	}
	certPEM, _, err = root.IssueNodeCertificate(csrPEM, nodeID, role, clusterID, expiry)
	if err != nil {
		t.Fatalf("IssueNodeCertificate: %v", err)
	}
	return certPEM, keyPEM
}

func newTestSecurityConfig(t *testing.T, root *RootCA, nodeID string, role api.NodeRole, clusterID string, expiry time.Duration) *SecurityConfig {
	t.Helper()
	certPEM, keyPEM := issueTestCert(t, root, nodeID, role, clusterID, expiry)
	sc, err := NewSecurityConfig(root, certPEM, keyPEM)
	if err != nil {
		t.Fatalf("NewSecurityConfig: %v", err)
	}
	return sc
}

func mustParseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
