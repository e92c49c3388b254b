package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

// TestPolicyCoversEveryMethod checks the policy for every method of every
// service in api, so a new method gets the access its service implies.
func TestPolicyCoversEveryMethod(t *testing.T) {
	want := map[string]access{
		api.CA_ServiceDesc.ServiceName:         accessNode, // but see below
		api.Dispatcher_ServiceDesc.ServiceName: accessNode,
		api.Raft_ServiceDesc.ServiceName:       accessManager,
		api.Control_ServiceDesc.ServiceName:    accessManager,
	}
	caAnyone := map[string]bool{"GetRootCACertificate": true, "IssueNodeCertificate": true}
	for _, desc := range []grpc.ServiceDesc{api.CA_ServiceDesc, api.Dispatcher_ServiceDesc, api.Raft_ServiceDesc, api.Control_ServiceDesc} {
		var methods []string
		for _, m := range desc.Methods {
			methods = append(methods, m.MethodName)
		}
		for _, s := range desc.Streams {
			methods = append(methods, s.StreamName)
		}
		for _, m := range methods {
			full := "/" + desc.ServiceName + "/" + m
			wantAccess := want[desc.ServiceName]
			if desc.ServiceName == api.CA_ServiceDesc.ServiceName && caAnyone[m] {
				wantAccess = accessAnyone
			}
			got, ok := policyFor(full)
			if !ok || got != wantAccess {
				t.Errorf("policy for %s = %v (in table %v), want %v", full, got, ok, wantAccess)
			}
		}
	}
	for _, m := range []string{"/shoal.api.Unknown/Ping", "/shoal.api.CA/Other", "/shoal.api.Raft", "Raft/Ping", ""} {
		if got, ok := policyFor(m); ok {
			t.Errorf("policy for %q = %v, want not in the table", m, got)
		}
	}
}

// peerContext returns a call context as gRPC's TLS credentials make it, with
// cert as the verified client certificate (none if nil).
func peerContext(cert *x509.Certificate) context.Context {
	var state tls.ConnectionState
	if cert != nil {
		state.VerifiedChains = [][]*x509.Certificate{{cert}}
	}
	return peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242},
		AuthInfo: credentials.TLSInfo{State: state},
	})
}

func TestAuthorize(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	certFor := func(nodeID string, role api.NodeRole, clusterID string) *x509.Certificate {
		certPEM, _ := issueTestCert(t, root, nodeID, role, clusterID, time.Hour)
		return mustParseCert(t, certPEM)
	}
	nodes := map[string]*api.Node{
		"mgr":     {Id: "mgr", Role: manager, Spec: &api.NodeSpec{DesiredRole: manager}},
		"wrk":     {Id: "wrk", Role: worker},
		"demoted": {Id: "demoted", Role: worker}, // still holds a manager certificate
		// Demoted, certificate not yet renewed: record and certificate
		// still say manager, only the desired role changed.
		"demoting": {Id: "demoting", Role: manager, Spec: &api.NodeSpec{DesiredRole: worker}},
	}
	authz := NewAuthorizer(func() string { return "cluster-a" }, func(id string) (*api.Node, error) {
		if n, ok := nodes[id]; ok {
			return n, nil
		}
		if id == "undecided" {
			return nil, errors.New("no leader")
		}
		return nil, ErrNodeNotFound
	})
	managerCert := certFor("mgr", manager, "cluster-a")
	workerCert := certFor("wrk", worker, "cluster-a")
	demotedCert := certFor("demoted", manager, "cluster-a")
	demotingCert := certFor("demoting", manager, "cluster-a")
	undecidedCert := certFor("undecided", manager, "cluster-a")
	removedCert := certFor("gone", manager, "cluster-a")
	otherClusterCert := certFor("mgr", manager, "cluster-b")
	notNodeCert := certWithSubject(t, pkix.Name{CommonName: "mgr", Organization: []string{"cluster-a"}, OrganizationalUnit: []string{"admins"}})

	const (
		ping      = api.Raft_Ping_FullMethodName
		listNodes = api.Control_ListNodes_FullMethodName
		heartbeat = api.Dispatcher_Heartbeat_FullMethodName
		session   = api.Dispatcher_Session_FullMethodName
		renew     = api.CA_RenewNodeCertificate_FullMethodName
		issue     = api.CA_IssueNodeCertificate_FullMethodName
		getRoot   = api.CA_GetRootCACertificate_FullMethodName
	)
	tests := []struct {
		name     string
		ctx      context.Context
		method   string
		wantCode codes.Code
		wantMsg  string
	}{
		{"manager pings", peerContext(managerCert), ping, codes.OK, ""},
		{"manager lists nodes", peerContext(managerCert), listNodes, codes.OK, ""},
		{"manager heartbeats", peerContext(managerCert), heartbeat, codes.OK, ""},
		{"worker heartbeats", peerContext(workerCert), heartbeat, codes.OK, ""},
		{"worker opens a session", peerContext(workerCert), session, codes.OK, ""},
		{"worker renews", peerContext(workerCert), renew, codes.OK, ""},
		{"worker pings", peerContext(workerCert), ping, codes.PermissionDenied, "method /shoal.api.Raft/Ping requires a manager certificate; this node's role is worker"},
		{"worker lists nodes", peerContext(workerCert), listNodes, codes.PermissionDenied, "requires a manager certificate"},
		{"demoted manager pings", peerContext(demotedCert), ping, codes.PermissionDenied, "its role in the cluster is worker"},
		{"demoted manager heartbeats", peerContext(demotedCert), heartbeat, codes.OK, ""},
		{"manager being demoted lists nodes", peerContext(demotingCert), listNodes, codes.PermissionDenied, "was demoted to worker"},
		{"manager being demoted heartbeats", peerContext(demotingCert), heartbeat, codes.OK, ""},
		{"undecidable lookup", peerContext(undecidedCert), heartbeat, codes.Unavailable, "cannot check node undecided"},
		{"removed node heartbeats", peerContext(removedCert), heartbeat, codes.PermissionDenied, "node gone was removed from the cluster"},
		{"removed node pings", peerContext(removedCert), ping, codes.PermissionDenied, "node gone was removed from the cluster"},
		{"other cluster", peerContext(otherClusterCert), heartbeat, codes.PermissionDenied, "is for cluster cluster-b, this is cluster cluster-a"},
		{"not a node certificate", peerContext(notNodeCert), heartbeat, codes.PermissionDenied, "not a node certificate"},
		{"no client certificate heartbeats", peerContext(nil), heartbeat, codes.Unauthenticated, "no client certificate"},
		{"no client certificate renews", peerContext(nil), renew, codes.Unauthenticated, "no client certificate"},
		{"no client certificate gets root", peerContext(nil), getRoot, codes.OK, ""},
		{"no client certificate joins", peerContext(nil), issue, codes.OK, ""},
		{"no peer joins", context.Background(), issue, codes.OK, ""},
		{"no peer pings", context.Background(), ping, codes.Unauthenticated, "no peer information"},
		{"not TLS", peer.NewContext(context.Background(), &peer.Peer{}), heartbeat, codes.Unauthenticated, "not TLS"},
		{"unknown method", peerContext(managerCert), "/shoal.api.Secrets/Get", codes.PermissionDenied, "not served to remote callers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := authz.Authorize(tt.ctx, tt.method)
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Fatalf("Authorize(%s) = %v, want code %v with message containing %q", tt.method, err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
