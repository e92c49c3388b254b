package ca

// This file owns a node's credentials in memory: the cluster's root CA
// certificate and the node's current certificate and key, and the TLS
// configurations built from them. The certificate is handed to TLS through
// callbacks, so a renewal (Update) takes effect on the next handshake without
// restarting any server or client. The files on disk are credfiles.go's job.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// SecurityConfig is a node's credential set. It is safe for concurrent use.
type SecurityConfig struct {
	root *RootCA // verify-only

	// updateMu serialises Save and Update, which write files.
	updateMu sync.Mutex

	mu      sync.RWMutex
	dir     string // where Update persists; "" until Save or Load
	cred    *nodeCredential
	changed chan struct{} // closed and replaced by every Update
}

// nodeCredential is one certificate with its key, parsed.
type nodeCredential struct {
	certPEM  []byte
	keyPEM   []byte
	tlsCert  *tls.Certificate // Leaf is set
	identity Identity
}

// NewSecurityConfig builds a credential set from the cluster's root CA and a
// node certificate and key. The certificate must verify against the root CA
// and the key must belong to it. Nothing is written until Save.
func NewSecurityConfig(root *RootCA, certPEM, keyPEM []byte) (*SecurityConfig, error) {
	if root == nil || root.Cert == nil {
		return nil, errors.New("security config: no root CA")
	}
	verifyOnly := &RootCA{Cert: root.Cert, CertPEM: root.CertPEM}
	cred, err := newNodeCredential(verifyOnly, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &SecurityConfig{root: verifyOnly, cred: cred, changed: make(chan struct{})}, nil
}

func newNodeCredential(root *RootCA, certPEM, keyPEM []byte) (*nodeCredential, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate and key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse node certificate: %w", err)
	}
	pair.Leaf = leaf
	if err := root.verifyNodeCertificate(leaf); err != nil {
		return nil, err
	}
	id, err := IdentityFromCertificate(leaf)
	if err != nil {
		return nil, err
	}
	return &nodeCredential{certPEM: certPEM, keyPEM: keyPEM, tlsCert: &pair, identity: id}, nil
}

// current returns the credential in use.
func (sc *SecurityConfig) current() *nodeCredential {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.cred
}

// RootCA returns the cluster's root CA (verify-only: no key).
func (sc *SecurityConfig) RootCA() *RootCA { return sc.root }

// Identity returns the identity the current certificate grants.
func (sc *SecurityConfig) Identity() Identity { return sc.current().identity }

// NotAfter returns when the current certificate expires.
func (sc *SecurityConfig) NotAfter() time.Time { return sc.current().tlsCert.Leaf.NotAfter }

// validity returns the current certificate's NotBefore and NotAfter.
func (sc *SecurityConfig) validity() (notBefore, notAfter time.Time) {
	leaf := sc.current().tlsCert.Leaf
	return leaf.NotBefore, leaf.NotAfter
}

// CertificatePEM returns the current node certificate as PEM.
func (sc *SecurityConfig) CertificatePEM() []byte { return sc.current().certPEM }

// Changed returns a channel closed by the next Update.
func (sc *SecurityConfig) Changed() <-chan struct{} {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.changed
}

// Save writes the credential set to dir (ca.crt, node.crt, node.key) and
// makes later Updates persist there.
func (sc *SecurityConfig) Save(dir string) error {
	sc.updateMu.Lock()
	defer sc.updateMu.Unlock()
	cred := sc.current()
	if err := writeCredentialFiles(dir, sc.root.CertPEM, cred.certPEM, cred.keyPEM); err != nil {
		return err
	}
	sc.mu.Lock()
	sc.dir = dir
	sc.mu.Unlock()
	return nil
}

// Update replaces the node certificate and key, on disk first (if the set
// was saved or loaded) and then in memory. The new certificate must verify
// against the root CA and name the same node and cluster; its role may
// differ.
func (sc *SecurityConfig) Update(certPEM, keyPEM []byte) error {
	cred, err := newNodeCredential(sc.root, certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("update node certificate: %w", err)
	}
	sc.updateMu.Lock()
	defer sc.updateMu.Unlock()
	old := sc.current()
	if cred.identity.NodeID != old.identity.NodeID || cred.identity.ClusterID != old.identity.ClusterID {
		return fmt.Errorf("update node certificate: new certificate is for node %s of cluster %s, this is node %s of cluster %s",
			cred.identity.NodeID, cred.identity.ClusterID, old.identity.NodeID, old.identity.ClusterID)
	}
	sc.mu.RLock()
	dir := sc.dir
	sc.mu.RUnlock()
	if dir != "" {
		if err := writeNodeFiles(dir, certPEM, keyPEM); err != nil {
			return fmt.Errorf("update node certificate: %w", err)
		}
	}
	sc.mu.Lock()
	sc.cred = cred
	close(sc.changed)
	sc.changed = make(chan struct{})
	sc.mu.Unlock()
	return nil
}

// ServerTLSConfig returns the TLS configuration of a node's gRPC server. A
// client certificate is verified against the root CA when given but not
// required, because joining nodes have none yet; the Authorizer decides per
// method.
func (sc *SecurityConfig) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return sc.current().tlsCert, nil
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  sc.root.Pool(),
	}
}

// ClientTLSConfig returns the TLS configuration for dialing other nodes: it
// presents the current node certificate and verifies the server against the
// root CA under the name "shoal-node".
func (sc *SecurityConfig) ClientTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return sc.current().tlsCert, nil
		},
		RootCAs:    sc.root.Pool(),
		ServerName: ServerName,
	}
}

// ServerCredentials returns gRPC transport credentials built on
// ServerTLSConfig.
func (sc *SecurityConfig) ServerCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(sc.ServerTLSConfig())
}

// ClientCredentials returns gRPC transport credentials built on
// ClientTLSConfig.
func (sc *SecurityConfig) ClientCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(sc.ClientTLSConfig())
}
