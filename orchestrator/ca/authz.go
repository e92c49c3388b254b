package ca

// This file decides which caller may call which method of the remote gRPC
// server (TCP with TLS). A policy table names who may call each method;
// anything not in the table is denied. A caller's certificate counts only if
// TLS verified its chain, it names this cluster, its node still exists (so a
// removed node's certificate is useless at once) and, for manager-only
// methods, both the certificate and the node record say manager.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

// NodeLookup reads a node record from the local store. It returns an error
// wrapping ErrNodeNotFound when the node does not exist, and another error
// when it cannot tell (for example while the manager has no leader).
type NodeLookup func(nodeID string) (*api.Node, error)

// access is who may call a method.
type access int

const (
	// accessAnyone admits any caller, even without a client certificate.
	accessAnyone access = iota + 1
	// accessNode admits any node of this cluster, worker or manager.
	accessNode
	// accessManager admits managers of this cluster only.
	accessManager
)

// methodAccess lists single methods; serviceAccess whole services, by the
// "/package.Service/" prefix of their full method names.
var (
	methodAccess = map[string]access{
		api.CA_GetRootCACertificate_FullMethodName: accessAnyone,
		api.CA_IssueNodeCertificate_FullMethodName: accessAnyone,
		api.CA_RenewNodeCertificate_FullMethodName: accessNode,
	}
	serviceAccess = map[string]access{
		servicePrefix(api.Dispatcher_ServiceDesc): accessNode,
		servicePrefix(api.Raft_ServiceDesc):       accessManager,
		servicePrefix(api.Control_ServiceDesc):    accessManager,
	}
)

func servicePrefix(desc grpc.ServiceDesc) string { return "/" + desc.ServiceName + "/" }

// policyFor returns who may call the full method name, and false for a
// method not in the policy.
func policyFor(method string) (access, bool) {
	if a, ok := methodAccess[method]; ok {
		return a, true
	}
	if i := strings.LastIndex(method, "/"); i > 0 {
		if a, ok := serviceAccess[method[:i+1]]; ok {
			return a, true
		}
	}
	return 0, false
}

// Authorizer checks every call to the remote gRPC server against the policy.
type Authorizer struct {
	clusterID func() string
	nodes     NodeLookup
}

// NewAuthorizer returns an Authorizer for the cluster whose ID clusterID
// returns, looking nodes up with nodes.
func NewAuthorizer(clusterID func() string, nodes NodeLookup) *Authorizer {
	return &Authorizer{clusterID: clusterID, nodes: nodes}
}

// Authorize returns nil if the caller in ctx may call method, and otherwise
// an Unauthenticated or PermissionDenied status saying why.
func (a *Authorizer) Authorize(ctx context.Context, method string) error {
	need, ok := policyFor(method)
	if !ok {
		return status.Errorf(codes.PermissionDenied, "method %s is not served to remote callers", method)
	}
	if need == accessAnyone {
		return nil
	}
	cert, err := peerCertificate(ctx)
	if errors.Is(err, errNoClientCert) {
		return status.Errorf(codes.Unauthenticated, "no client certificate: method %s requires a node certificate", method)
	}
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "method %s requires a node certificate: %v", method, err)
	}
	id, err := IdentityFromCertificate(cert)
	if err != nil {
		return status.Errorf(codes.PermissionDenied, "client certificate is not a node certificate: %v", err)
	}
	if cluster := a.clusterID(); id.ClusterID != cluster {
		return status.Errorf(codes.PermissionDenied, "certificate of node %s is for cluster %s, this is cluster %s", id.NodeID, id.ClusterID, cluster)
	}
	node, err := a.nodes(id.NodeID)
	if errors.Is(err, ErrNodeNotFound) {
		return status.Errorf(codes.PermissionDenied, "node %s was removed from the cluster", id.NodeID)
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "cannot check node %s: %v", id.NodeID, err)
	}
	if need == accessManager {
		if err := requireManager(method, id, node); err != nil {
			return err
		}
	}
	return nil
}

// requireManager checks that the certificate, the node record and the
// operator's wish all make the caller a manager: a demoted node loses
// manager access the moment its demotion commits, before its certificate is
// renewed.
func requireManager(method string, id Identity, node *api.Node) error {
	if id.Role != api.NodeRole_NODE_ROLE_MANAGER {
		return status.Errorf(codes.PermissionDenied, "method %s requires a manager certificate; this node's role is %s", method, id.Role.Name())
	}
	if role := node.GetRole(); role != api.NodeRole_NODE_ROLE_MANAGER {
		return status.Errorf(codes.PermissionDenied, "method %s requires a manager; node %s has a manager certificate but its role in the cluster is %s", method, id.NodeID, role.Name())
	}
	if want := node.GetSpec().GetDesiredRole(); want != api.NodeRole_NODE_ROLE_MANAGER {
		return status.Errorf(codes.PermissionDenied, "method %s requires a manager; node %s was demoted to %s", method, id.NodeID, want.Name())
	}
	return nil
}

// UnaryServerInterceptor authorizes unary calls.
func (a *Authorizer) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := a.Authorize(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor authorizes streaming calls.
func (a *Authorizer) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := a.Authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// String describes an access level for messages and tests.
func (a access) String() string {
	switch a {
	case accessAnyone:
		return "anyone"
	case accessNode:
		return "any node"
	case accessManager:
		return "managers"
	default:
		return fmt.Sprintf("access(%d)", int(a))
	}
}
