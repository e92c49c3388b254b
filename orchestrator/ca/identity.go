package ca

// This file reads who a node is from its certificate: node ID (CN), role
// (OU) and cluster ID (O), and finds the verified certificate of a gRPC
// caller. Deciding what that caller may do is authz.go's job.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/shoal/shoal/api"
)

const (
	// ManagerOU is the Subject OU of a manager's certificate.
	ManagerOU = "shoal-manager"
	// WorkerOU is the Subject OU of a worker's certificate.
	WorkerOU = "shoal-worker"
	// ServerName is the DNS name every manager certificate carries and
	// every node dials managers with: peers are verified by chain and this
	// name, not by address, so a worker's certificate cannot pass for a
	// manager's.
	ServerName = "shoal-manager"
	// WorkerName is the DNS name of a worker's certificate, which is good
	// for client authentication only.
	WorkerName = "shoal-worker"
)

// Identity is who a node certificate says its holder is.
type Identity struct {
	NodeID    string
	ClusterID string
	Role      api.NodeRole
}

// IdentityFromCertificate reads the identity of a node certificate. It does
// not verify the certificate; callers pass certificates TLS has verified.
func IdentityFromCertificate(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, errors.New("no certificate")
	}
	subj := cert.Subject
	if subj.CommonName == "" {
		return Identity{}, errors.New("certificate has no node ID (empty subject CN)")
	}
	if len(subj.Organization) != 1 || subj.Organization[0] == "" {
		return Identity{}, fmt.Errorf("certificate of node %s must name exactly one cluster ID (subject O), has %q", subj.CommonName, subj.Organization)
	}
	if len(subj.OrganizationalUnit) != 1 {
		return Identity{}, fmt.Errorf("certificate of node %s must name exactly one role (subject OU), has %q", subj.CommonName, subj.OrganizationalUnit)
	}
	role, err := ouRole(subj.OrganizationalUnit[0])
	if err != nil {
		return Identity{}, fmt.Errorf("certificate of node %s: %w", subj.CommonName, err)
	}
	return Identity{NodeID: subj.CommonName, ClusterID: subj.Organization[0], Role: role}, nil
}

// IdentityFromContext returns the identity in the client certificate of the
// gRPC call in ctx. It reports false when the call came without TLS, without
// a client certificate, or with one that is not a node certificate. The
// certificate chain was verified by TLS against the cluster's root CA; the
// cluster ID and the node's existence are for the caller to check.
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	cert, err := peerCertificate(ctx)
	if err != nil {
		return Identity{}, false
	}
	id, err := IdentityFromCertificate(cert)
	if err != nil {
		return Identity{}, false
	}
	return id, true
}

// errNoClientCert is returned by peerCertificate for a caller that did not
// present a verified client certificate.
var errNoClientCert = errors.New("no client certificate")

// peerCertificate returns the gRPC caller's verified leaf certificate.
func peerCertificate(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, errors.New("no peer information in the call's context")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, errors.New("the connection is not TLS")
	}
	chains := info.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil, errNoClientCert
	}
	return chains[0][0], nil
}

// roleOU returns the certificate OU for a role.
func roleOU(role api.NodeRole) (string, error) {
	switch role {
	case api.NodeRole_NODE_ROLE_MANAGER:
		return ManagerOU, nil
	case api.NodeRole_NODE_ROLE_WORKER:
		return WorkerOU, nil
	default:
		return "", fmt.Errorf("unknown node role %v", role)
	}
}

// ouRole returns the role a certificate OU grants.
func ouRole(ou string) (api.NodeRole, error) {
	switch ou {
	case ManagerOU:
		return api.NodeRole_NODE_ROLE_MANAGER, nil
	case WorkerOU:
		return api.NodeRole_NODE_ROLE_WORKER, nil
	default:
		return 0, fmt.Errorf("unknown role %q in subject OU, want %q or %q", ou, ManagerOU, WorkerOU)
	}
}
