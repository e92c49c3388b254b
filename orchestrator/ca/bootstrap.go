package ca

// This file creates a new cluster's security: what the first manager makes
// when it starts without a cluster to join.

import (
	"fmt"
	"time"

	"github.com/shoal/shoal/api"
)

// Bootstrap creates a cluster's root CA and two join tokens, and the first
// manager's credentials (node nodeID, valid for expiry) saved in dir. The
// returned api.RootCA belongs in the new Cluster object.
func Bootstrap(clusterID, nodeID string, expiry time.Duration, dir string) (*api.RootCA, *SecurityConfig, error) {
	root, err := NewRootCA(clusterID)
	if err != nil {
		return nil, nil, err
	}
	rootKeyPEM, err := root.KeyPEM()
	if err != nil {
		return nil, nil, err
	}
	workerToken, err := GenerateJoinToken(root)
	if err != nil {
		return nil, nil, err
	}
	managerToken, err := GenerateJoinToken(root)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, csrPEM, err := GenerateKeyAndCSR()
	if err != nil {
		return nil, nil, err
	}
	certPEM, _, err := root.IssueNodeCertificate(csrPEM, nodeID, api.NodeRole_NODE_ROLE_MANAGER, clusterID, expiry)
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap: %w", err)
	}
	sc, err := NewSecurityConfig(root, certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := sc.Save(dir); err != nil {
		return nil, nil, fmt.Errorf("bootstrap: save node credentials: %w", err)
	}
	rca := &api.RootCA{
		CaCertPem:    root.CertPEM,
		CaKeyPem:     rootKeyPEM,
		CaCertDigest: root.Digest(),
		JoinTokens:   &api.JoinTokens{Worker: workerToken, Manager: managerToken},
	}
	return rca, sc, nil
}
