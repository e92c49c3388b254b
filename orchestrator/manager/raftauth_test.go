package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
)

// asNode returns a call context whose verified peer certificate names
// nodeID as a manager of the cluster.
func asNode(t *testing.T, root *ca.RootCA, nodeID string, forwarded bool) context.Context {
	t.Helper()
	_, csr, err := ca.GenerateKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := root.IssueNodeCertificate(csr, nodeID, api.NodeRole_NODE_ROLE_MANAGER, "cluster-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{
		State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert, root.Cert}}},
	}})
	if forwarded {
		// What a member forwarding a request sends (raft's forwarded mark).
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("shoal-raft-forwarded", "1"))
	}
	return ctx
}

func TestRaftMembershipRequestsAreBoundToTheCaller(t *testing.T) {
	m := startTestManager(t) // node-1, the only raft member
	root, err := ca.ParseRootCA(m.cfg.Bootstrap.RootCA.GetCaCertPem(), m.cfg.Bootstrap.RootCA.GetCaKeyPem())
	if err != nil {
		t.Fatal(err)
	}
	intercept := m.raftMembershipInterceptor()
	handled := func(context.Context, any) (any, error) { return "handled", nil }
	info := &grpc.UnaryServerInfo{FullMethod: api.Raft_Join_FullMethodName}
	selfRaftID := m.memberRaftID("node-1")

	tests := []struct {
		name string
		ctx  context.Context
		req  any
		want codes.Code
	}{
		{"a manager joins as itself", asNode(t, root, "node-2", false), &api.JoinRaftRequest{NodeId: "node-2", Addr: "x:1"}, codes.OK},
		{"a manager joins as another", asNode(t, root, "node-2", false), &api.JoinRaftRequest{NodeId: "node-3", Addr: "x:1"}, codes.PermissionDenied},
		{"a non-member forwards a join", asNode(t, root, "node-2", true), &api.JoinRaftRequest{NodeId: "node-3", Addr: "x:1"}, codes.PermissionDenied},
		{"a member forwards a join", asNode(t, root, "node-1", true), &api.JoinRaftRequest{NodeId: "node-3", Addr: "x:1"}, codes.OK},
		{"a manager removes another member", asNode(t, root, "node-2", false), &api.LeaveRaftRequest{RaftId: selfRaftID}, codes.PermissionDenied},
		{"a member leaves itself", asNode(t, root, "node-1", false), &api.LeaveRaftRequest{RaftId: selfRaftID}, codes.OK},
		{"no certificate", context.Background(), &api.JoinRaftRequest{NodeId: "node-2"}, codes.Unauthenticated},
		{"other requests pass", context.Background(), &api.PingRequest{}, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := intercept(tt.ctx, tt.req, info, handled)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}
