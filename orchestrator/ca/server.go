package ca

// This file is the manager's side of the CA service: it hands out the root
// CA certificate, admits joining nodes whose join token matches, and renews
// the certificates of nodes that still belong to the cluster. Which callers
// reach which method at all is authz.go's job; the checks here repeat the
// ones that decide what a certificate says, so the service is safe even if
// served without the interceptors.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
)

// ErrNodeNotFound is wrapped by Backend.Node when the node does not exist.
var ErrNodeNotFound = errors.New("node not found")

// Backend is what the CA server needs of the replicated store; the manager
// supplies it.
type Backend interface {
	// Cluster returns the current cluster object (root CA cert+key PEM, join
	// tokens, spec) after a linearizable read.
	Cluster(ctx context.Context) (*api.Cluster, error)
	// RegisterNode creates a new node record (ID chosen by the server: a
	// random 25-char base36 string) with its role, description, status addr,
	// certificate info.
	RegisterNode(ctx context.Context, n *api.Node) error
	// Node returns the node record, or an error wrapping ErrNodeNotFound.
	Node(ctx context.Context, nodeID string) (*api.Node, error)
	// UpdateNodeCertificate stores a renewed certificate's role/expiry on the
	// node record.
	UpdateNodeCertificate(ctx context.Context, nodeID string, cert *api.NodeCertificate) error
}

// Server implements api.CAServer.
type Server struct {
	api.UnimplementedCAServer
	backend Backend
	logger  *slog.Logger

	// The parsed root CA of the last cluster read, reused while its PEM is
	// unchanged.
	mu           sync.Mutex
	cachedCert   []byte
	cachedKey    []byte
	cachedRootCA *RootCA
}

// NewServer returns the CA service backed by the replicated store.
func NewServer(backend Backend, logger *slog.Logger) *Server {
	return &Server{backend: backend, logger: logger}
}

// GetRootCACertificate returns the cluster's root CA certificate. Anyone may
// call it: a joining node checks it against its join token's digest.
func (s *Server) GetRootCACertificate(ctx context.Context, _ *api.GetRootCACertificateRequest) (*api.GetRootCACertificateResponse, error) {
	_, root, err := s.cluster(ctx)
	if err != nil {
		return nil, err
	}
	return &api.GetRootCACertificateResponse{CertificatePem: root.CertPEM}, nil
}

// IssueNodeCertificate admits a new node: the join token decides its role,
// the server chooses its ID, registers it and signs its CSR.
func (s *Server) IssueNodeCertificate(ctx context.Context, req *api.IssueNodeCertificateRequest) (*api.IssueNodeCertificateResponse, error) {
	tok, err := ParseJoinToken(req.GetToken())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if len(req.GetCsr()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "csr is empty")
	}
	cluster, root, err := s.cluster(ctx)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(tok.Digest), []byte(root.Digest())) != 1 {
		return nil, status.Error(codes.PermissionDenied, "the join token's CA digest does not match this cluster's CA: the token is for another cluster")
	}
	role, ok := tokenRole(tok.String(), cluster.GetRootCa().GetJoinTokens())
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "invalid join token")
	}
	nodeID, err := NewID()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "choose node ID: %v", err)
	}
	cert, err := s.issue(root, req.GetCsr(), nodeID, role, cluster)
	if err != nil {
		return nil, err
	}
	node := &api.Node{
		Id: nodeID,
		Spec: &api.NodeSpec{
			DesiredRole:  role,
			Availability: api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
		},
		Description: req.GetDescription(),
		Status:      &api.NodeStatus{Addr: nodeAddr(ctx, req.GetAddr())},
		Role:        role,
		Certificate: cert,
	}
	if err := s.backend.RegisterNode(ctx, node); err != nil {
		return nil, backendError("register node", err)
	}
	s.logger.Info("node joined", "node", nodeID, "role", role.Name(), "addr", node.Status.Addr,
		"hostname", req.GetDescription().GetHostname(), "not_after", cert.NotAfter.AsTime())
	return &api.IssueNodeCertificateResponse{
		NodeId:         nodeID,
		CertificatePem: cert.CertificatePem,
		Role:           role,
		ClusterId:      cluster.GetId(),
	}, nil
}

// RenewNodeCertificate signs a new CSR for a node of this cluster that
// presents its current certificate. The new certificate's role is the node's
// desired role, which is how promotion and demotion take effect.
func (s *Server) RenewNodeCertificate(ctx context.Context, req *api.RenewNodeCertificateRequest) (*api.RenewNodeCertificateResponse, error) {
	id, ok := IdentityFromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no client certificate: renewal needs the node's current certificate")
	}
	if len(req.GetCsr()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "csr is empty")
	}
	cluster, root, err := s.cluster(ctx)
	if err != nil {
		return nil, err
	}
	if id.ClusterID != cluster.GetId() {
		return nil, status.Errorf(codes.PermissionDenied, "certificate is for cluster %s, this is cluster %s", id.ClusterID, cluster.GetId())
	}
	node, err := s.backend.Node(ctx, id.NodeID)
	if errors.Is(err, ErrNodeNotFound) {
		return nil, status.Errorf(codes.PermissionDenied, "node %s was removed from the cluster", id.NodeID)
	}
	if err != nil {
		return nil, backendError("read node "+id.NodeID, err)
	}
	role := node.GetSpec().GetDesiredRole()
	cert, err := s.issue(root, req.GetCsr(), id.NodeID, role, cluster)
	if err != nil {
		return nil, err
	}
	if err := s.backend.UpdateNodeCertificate(ctx, id.NodeID, cert); err != nil {
		return nil, backendError("record node certificate", err)
	}
	s.logger.Info("renewed node certificate", "node", id.NodeID, "role", role.Name(),
		"previous_role", id.Role.Name(), "not_after", cert.NotAfter.AsTime())
	return &api.RenewNodeCertificateResponse{CertificatePem: cert.CertificatePem, Role: role}, nil
}

// issue signs a node certificate with the cluster's configured expiry.
func (s *Server) issue(root *RootCA, csrPEM []byte, nodeID string, role api.NodeRole, cluster *api.Cluster) (*api.NodeCertificate, error) {
	certPEM, notAfter, err := root.IssueNodeCertificate(csrPEM, nodeID, role, cluster.GetId(), nodeCertExpiry(cluster))
	if errors.Is(err, ErrInvalidCSR) {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &api.NodeCertificate{CertificatePem: certPEM, Role: role, NotAfter: timestamppb.New(notAfter)}, nil
}

// cluster reads the cluster object and its root CA.
func (s *Server) cluster(ctx context.Context) (*api.Cluster, *RootCA, error) {
	cluster, err := s.backend.Cluster(ctx)
	if err != nil {
		return nil, nil, backendError("read cluster", err)
	}
	rca := cluster.GetRootCa()
	if len(rca.GetCaCertPem()) == 0 || len(rca.GetCaKeyPem()) == 0 {
		return nil, nil, status.Error(codes.FailedPrecondition, "the cluster has no root CA certificate and key")
	}
	root, err := s.rootCA(rca.GetCaCertPem(), rca.GetCaKeyPem())
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "cluster root CA: %v", err)
	}
	return cluster, root, nil
}

// rootCA parses the root CA, or returns the one parsed last time if the PEM
// is the same.
func (s *Server) rootCA(certPEM, keyPEM []byte) (*RootCA, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cachedRootCA != nil && bytes.Equal(certPEM, s.cachedCert) && bytes.Equal(keyPEM, s.cachedKey) {
		return s.cachedRootCA, nil
	}
	root, err := ParseRootCA(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	s.cachedCert, s.cachedKey, s.cachedRootCA = bytes.Clone(certPEM), bytes.Clone(keyPEM), root
	return root, nil
}

// tokenRole returns the role the token admits, comparing it with both join
// tokens in constant time.
func tokenRole(token string, tokens *api.JoinTokens) (api.NodeRole, bool) {
	manager := subtle.ConstantTimeCompare([]byte(token), []byte(tokens.GetManager()))
	worker := subtle.ConstantTimeCompare([]byte(token), []byte(tokens.GetWorker()))
	switch {
	case manager == 1:
		return api.NodeRole_NODE_ROLE_MANAGER, true
	case worker == 1:
		return api.NodeRole_NODE_ROLE_WORKER, true
	default:
		return 0, false
	}
}

// nodeCertExpiry is the cluster's node certificate validity.
func nodeCertExpiry(cluster *api.Cluster) time.Duration {
	if d := cluster.GetSpec().GetCaConfig().GetNodeCertExpiry(); d != nil && d.AsDuration() > 0 {
		return d.AsDuration()
	}
	return DefaultNodeCertExpiry
}

// nodeAddr is the address recorded for a new node: the one it advertises,
// or else the host its call came from.
func nodeAddr(ctx context.Context, advertised string) string {
	if advertised != "" {
		return advertised
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}

// backendError turns a store error into a gRPC status: the caller's
// cancellation and deadline as such, a status from the store with its code,
// anything else as Unavailable (no leader, no quorum: try again).
func backendError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.Errorf(status.FromContextError(err).Code(), "%s: %v", op, err)
	}
	if st, ok := status.FromError(err); ok {
		return status.Errorf(st.Code(), "%s: %s", op, st.Message())
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("%s: %v", op, err))
}
