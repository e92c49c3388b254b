package ca

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

func TestJoin(t *testing.T) {
	tc := newTestCluster(t, time.Hour)
	tests := []struct {
		name  string
		token string
		want  api.NodeRole
	}{
		{"worker token", tc.tokens().GetWorker(), worker},
		{"manager token", tc.tokens().GetManager(), manager},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			sc, err := RequestCertificate(testContext(t), tc.addr, tt.token, &api.NodeDescription{Hostname: "joiner"}, "10.0.0.7:4242", dir)
			if err != nil {
				t.Fatalf("RequestCertificate: %v", err)
			}
			id := sc.Identity()
			if id.Role != tt.want || id.ClusterID != tc.id || len(id.NodeID) != idLen {
				t.Fatalf("identity = %+v, want a %s of cluster %s with a 25-character ID", id, tt.want.Name(), tc.id)
			}
			if remaining := time.Until(sc.NotAfter()); remaining < 58*time.Minute || remaining > time.Hour {
				t.Errorf("certificate expires in %s, want the cluster's 1h", remaining)
			}
			node, err := tc.backend.lookup(id.NodeID)
			if err != nil {
				t.Fatalf("node %s not registered: %v", id.NodeID, err)
			}
			if node.GetSpec().GetDesiredRole() != tt.want || node.GetRole() != tt.want {
				t.Errorf("node record desired role %v role %v, want %v", node.GetSpec().GetDesiredRole(), node.GetRole(), tt.want)
			}
			if node.GetSpec().GetAvailability() != api.NodeAvailability_NODE_AVAILABILITY_ACTIVE {
				t.Errorf("availability = %v, want active", node.GetSpec().GetAvailability())
			}
			if node.GetStatus().GetAddr() != "10.0.0.7:4242" || node.GetDescription().GetHostname() != "joiner" {
				t.Errorf("node record addr %q hostname %q, want the joiner's", node.GetStatus().GetAddr(), node.GetDescription().GetHostname())
			}
			if node.GetCertificate().GetRole() != tt.want || !node.GetCertificate().GetNotAfter().AsTime().Equal(sc.NotAfter()) {
				t.Errorf("node record certificate %v, want role %v expiring %s", node.GetCertificate(), tt.want, sc.NotAfter())
			}
			loaded, err := LoadSecurityConfig(dir)
			if err != nil {
				t.Fatalf("credentials not saved: %v", err)
			}
			if loaded.Identity() != id {
				t.Errorf("saved identity %+v, want %+v", loaded.Identity(), id)
			}
			// The new node's certificate opens its methods on the manager.
			if _, err := api.NewDispatcherClient(tc.dial(t, sc)).Heartbeat(testContext(t), &api.HeartbeatRequest{}); err != nil {
				t.Errorf("Heartbeat with the new certificate: %v", err)
			}
		})
	}
}

func TestJoinRefused(t *testing.T) {
	tc := newTestCluster(t, time.Hour)
	root, err := ParseRootCA(tc.backend.cluster.GetRootCa().GetCaCertPem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret, err := GenerateJoinToken(root)
	if err != nil {
		t.Fatal(err)
	}
	otherCluster, err := GenerateJoinToken(newTestRoot(t, "other"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		token     string
		wantIs    error      // checked with errors.Is, if set
		wantCode  codes.Code // checked with status.Code, if set
		wantMsg   string
		wantIssue bool // whether IssueNodeCertificate reached the server
	}{
		{name: "wrong secret", token: wrongSecret, wantCode: codes.PermissionDenied,
			wantMsg: "request node certificate from " + tc.addr + ": invalid join token", wantIssue: true},
		{name: "token of another cluster", token: otherCluster, wantIs: ErrDigestMismatch,
			wantMsg: "the join token's CA digest does not match the cluster's CA: wrong cluster or tampered connection"},
		{name: "malformed token", token: "SHOAL-1-abc", wantIs: ErrInvalidToken,
			wantMsg: "invalid join token: want 4 parts SHOAL-1-<digest>-<secret> separated by '-', got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodesBefore := tc.backend.nodeCount()
			issuesBefore := tc.callCount(api.CA_IssueNodeCertificate_FullMethodName)
			dir := filepath.Join(t.TempDir(), "certs")
			_, err := RequestCertificate(testContext(t), tc.addr, tt.token, nil, "", dir)
			if err == nil {
				t.Fatal("joined")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want one wrapping %v", err, tt.wantIs)
			}
			if tt.wantCode != codes.OK && status.Code(err) != tt.wantCode {
				t.Errorf("code = %v, want %v", status.Code(err), tt.wantCode)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("err = %q, want %q", err, tt.wantMsg)
			}
			issued := tc.callCount(api.CA_IssueNodeCertificate_FullMethodName) > issuesBefore
			if issued != tt.wantIssue {
				t.Errorf("IssueNodeCertificate reached the server: %v, want %v", issued, tt.wantIssue)
			}
			if n := tc.backend.nodeCount(); n != nodesBefore {
				t.Errorf("refused join registered a node: %d nodes, had %d", n, nodesBefore)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused join wrote credentials (stat %v)", err)
			}
		})
	}
}

// TestIssueNodeCertificateServerChecks calls the CA service directly, as a
// client that skips the client-side checks would.
func TestIssueNodeCertificateServerChecks(t *testing.T) {
	tc := newTestCluster(t, time.Hour)
	otherCluster, err := GenerateJoinToken(newTestRoot(t, "other"))
	if err != nil {
		t.Fatal(err)
	}
	_, csrPEM, err := GenerateKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: tc.managerSC.RootCA().Pool(), ServerName: ServerName})
	conn, err := grpc.NewClient(tc.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := api.NewCAClient(conn)
	tests := []struct {
		name     string
		token    string
		csr      []byte
		wantCode codes.Code
		wantMsg  string
	}{
		{"malformed token", "SHOAL-2-x-y", csrPEM, codes.InvalidArgument, `invalid join token: version is "2", want "1"`},
		{"token of another cluster", otherCluster, csrPEM, codes.PermissionDenied, "the join token's CA digest does not match this cluster's CA"},
		{"bad csr", tc.tokens().GetWorker(), []byte("not a csr"), codes.InvalidArgument, "invalid certificate signing request"},
		{"no csr", tc.tokens().GetWorker(), nil, codes.InvalidArgument, "csr is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.IssueNodeCertificate(testContext(t), &api.IssueNodeCertificateRequest{Csr: tt.csr, Token: tt.token})
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Fatalf("err = %v, want code %v with message containing %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	if n := tc.backend.nodeCount(); n != 1 {
		t.Fatalf("refused requests registered nodes: %d nodes, want only the manager", n)
	}
}

func TestRotatedTokenRefused(t *testing.T) {
	tc := newTestCluster(t, time.Hour)
	old := tc.tokens().GetWorker()
	tc.join(t, old)
	root, err := ParseRootCA(tc.backend.cluster.GetRootCa().GetCaCertPem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := GenerateJoinToken(root)
	if err != nil {
		t.Fatal(err)
	}
	tc.backend.updateCluster(func(c *api.Cluster) { c.RootCa.JoinTokens.Worker = rotated })

	_, err = RequestCertificate(testContext(t), tc.addr, old, nil, "", t.TempDir())
	if status.Code(err) != codes.PermissionDenied || !strings.HasSuffix(err.Error(), ": invalid join token") {
		t.Fatalf("join with the rotated-out token: err = %v, want PermissionDenied invalid join token", err)
	}
	if sc := tc.join(t, rotated); sc.Identity().Role != worker {
		t.Fatalf("join with the new token gave role %v, want worker", sc.Identity().Role)
	}
}

// TestAuthorizationOverTLS runs the Authorizer behind a real TLS listener:
// the certificate that reaches it is the one TLS verified.
func TestAuthorizationOverTLS(t *testing.T) {
	tc := newTestCluster(t, time.Hour)
	workerSC := tc.join(t, tc.tokens().GetWorker())
	managerSC := tc.join(t, tc.tokens().GetManager())
	removedSC := tc.join(t, tc.tokens().GetWorker())
	tc.backend.removeNode(removedSC.Identity().NodeID)

	// A client with TLS that verifies the manager but has no certificate.
	anonymous := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: tc.managerSC.RootCA().Pool(), ServerName: ServerName})
	// A node of another cluster: its certificate does not verify here.
	otherRoot := newTestRoot(t, "other")
	foreignSC := newTestSecurityConfig(t, otherRoot, "foreign", manager, "other", time.Hour)
	// Go's TLS client offers a certificate only if the server accepts its
	// issuer, so this one is never sent...
	foreignOffered := credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      tc.managerSC.RootCA().Pool(),
		ServerName:   ServerName,
		Certificates: []tls.Certificate{*foreignSC.current().tlsCert},
	})
	// ...and this one is sent regardless, and fails the handshake.
	foreignForced := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    tc.managerSC.RootCA().Pool(),
		ServerName: ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return foreignSC.current().tlsCert, nil
		},
	})

	ping := func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := api.NewRaftClient(conn).Ping(ctx, &api.PingRequest{})
		return err
	}
	heartbeat := func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := api.NewDispatcherClient(conn).Heartbeat(ctx, &api.HeartbeatRequest{})
		return err
	}
	session := func(ctx context.Context, conn *grpc.ClientConn) error {
		stream, err := api.NewDispatcherClient(conn).Session(ctx, &api.SessionRequest{})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	getRoot := func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := api.NewCAClient(conn).GetRootCACertificate(ctx, &api.GetRootCACertificateRequest{})
		return err
	}
	tests := []struct {
		name     string
		creds    credentials.TransportCredentials
		call     func(context.Context, *grpc.ClientConn) error
		wantCode codes.Code
		wantMsg  string
	}{
		{"manager pings", managerSC.ClientCredentials(), ping, codes.OK, ""},
		{"bootstrap manager pings", tc.managerSC.ClientCredentials(), ping, codes.OK, ""},
		{"worker heartbeats", workerSC.ClientCredentials(), heartbeat, codes.OK, ""},
		{"worker pings", workerSC.ClientCredentials(), ping, codes.PermissionDenied, "method /shoal.api.Raft/Ping requires a manager certificate; this node's role is worker"},
		// The stream interceptor lets a worker through to the handler, which the test leaves unimplemented.
		{"worker opens a session", workerSC.ClientCredentials(), session, codes.Unimplemented, ""},
		{"anonymous opens a session", anonymous, session, codes.Unauthenticated, "no client certificate"},
		{"removed node heartbeats", removedSC.ClientCredentials(), heartbeat, codes.PermissionDenied, "node " + removedSC.Identity().NodeID + " was removed from the cluster"},
		{"anonymous heartbeats", anonymous, heartbeat, codes.Unauthenticated, "no client certificate"},
		{"anonymous gets the root", anonymous, getRoot, codes.OK, ""},
		{"plaintext client", insecure.NewCredentials(), getRoot, codes.Unavailable, ""},
		{"node of another cluster, certificate offered", foreignOffered, heartbeat, codes.Unauthenticated, "no client certificate"},
		// The handshake fails ("unknown certificate authority", or a broken
		// pipe if the client writes first): no call is made at all.
		{"node of another cluster, certificate forced", foreignForced, heartbeat, codes.Unavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := grpc.NewClient(tc.addr, grpc.WithTransportCredentials(tt.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			err = tt.call(testContext(t), conn)
			t.Logf("call returned: %v", err)
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Fatalf("err = %v, want code %v with message containing %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestRenew(t *testing.T) {
	tc := newTestCluster(t, time.Hour)
	sc := tc.join(t, tc.tokens().GetWorker())
	nodeID := sc.Identity().NodeID
	conn := tc.dial(t, sc)
	ping := func() error {
		_, err := api.NewRaftClient(conn).Ping(testContext(t), &api.PingRequest{})
		return err
	}
	if status.Code(ping()) != codes.PermissionDenied {
		t.Fatal("a worker could ping before promotion")
	}

	// Promote with a longer expiry: the renewed certificate is a manager's
	// and expires later.
	tc.backend.updateCluster(func(c *api.Cluster) { c.Spec.CaConfig.NodeCertExpiry = durationpb.New(2 * time.Hour) })
	tc.backend.updateNode(nodeID, func(n *api.Node) { n.Spec.DesiredRole = manager })
	before := sc.NotAfter()
	if err := Renew(testContext(t), conn, sc); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if got := sc.Identity(); got.Role != manager || got.NodeID != nodeID {
		t.Fatalf("identity after promotion = %+v, want node %s as manager", got, nodeID)
	}
	if !sc.NotAfter().After(before) {
		t.Fatalf("NotAfter after renewal %s, want later than %s", sc.NotAfter(), before)
	}
	node, _ := tc.backend.lookup(nodeID)
	if node.GetRole() != manager || !node.GetCertificate().GetNotAfter().AsTime().Equal(sc.NotAfter()) {
		t.Fatalf("node record after renewal: role %v certificate %v", node.GetRole(), node.GetCertificate())
	}
	// New connections present the new certificate.
	conn = tc.dial(t, sc)
	if err := ping(); err != nil {
		t.Fatalf("Ping after promotion: %v", err)
	}

	// Demote: the next renewal takes manager access away.
	tc.backend.updateNode(nodeID, func(n *api.Node) { n.Spec.DesiredRole = worker })
	if err := Renew(testContext(t), conn, sc); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if sc.Identity().Role != worker {
		t.Fatalf("role after demotion = %v, want worker", sc.Identity().Role)
	}
	conn = tc.dial(t, sc)
	if status.Code(ping()) != codes.PermissionDenied {
		t.Fatal("a demoted node could still ping")
	}

	// A removed node cannot renew; the server's words reach the caller.
	tc.backend.removeNode(nodeID)
	err := Renew(testContext(t), conn, sc)
	want := "renew node certificate: node " + nodeID + " was removed from the cluster"
	if status.Code(err) != codes.PermissionDenied || err.Error() != want {
		t.Fatalf("Renew of a removed node: err = %v, want %q", err, want)
	}
}

func TestRenewalLoop(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 3*time.Second)
	sc := tc.join(t, tc.tokens().GetWorker())
	dial := func(context.Context) (*grpc.ClientConn, error) {
		return grpc.NewClient(tc.addr, grpc.WithTransportCredentials(sc.ClientCredentials()))
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RenewalLoop(ctx, sc, dial, testLogger(t))
	}()
	defer func() {
		cancel()
		<-done
	}()

	// Two renewals: the second shows the loop rescheduled from the first.
	for i := range 2 {
		before := sc.NotAfter()
		select {
		case <-sc.Changed():
		case <-time.After(10 * time.Second):
			t.Fatalf("renewal %d did not happen; certificate expires %s", i+1, before)
		}
		if !sc.NotAfter().After(before) {
			t.Fatalf("renewal %d: NotAfter %s, want later than %s", i+1, sc.NotAfter(), before)
		}
		node, _ := tc.backend.lookup(sc.Identity().NodeID)
		if !node.GetCertificate().GetNotAfter().AsTime().Equal(sc.NotAfter()) {
			t.Fatalf("renewal %d not recorded on the node", i+1)
		}
	}
}

func TestRenewalLoopRetries(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, 8*time.Second)
	sc := tc.join(t, tc.tokens().GetWorker())
	attempts := make(chan struct{}, 10)
	dial := func(context.Context) (*grpc.ClientConn, error) {
		attempts <- struct{}{}
		if len(attempts) == 1 {
			return nil, errors.New("manager unreachable")
		}
		return grpc.NewClient(tc.addr, grpc.WithTransportCredentials(sc.ClientCredentials()))
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		RenewalLoop(ctx, sc, dial, testLogger(t))
	}()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-sc.Changed():
	case <-time.After(15 * time.Second):
		t.Fatal("no renewal after a failed attempt")
	}
	if n := len(attempts); n != 2 {
		t.Fatalf("%d dial attempts, want the failed one and one retry", n)
	}
}

func TestRenewalTime(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	for _, expiry := range []time.Duration{3 * time.Second, time.Hour, 90 * 24 * time.Hour} {
		sc := newTestSecurityConfig(t, root, "node-1", worker, "cluster-a", expiry)
		notBefore, notAfter := sc.validity()
		issued := notBefore.Add(certBackdate)
		lifetime := notAfter.Sub(issued)
		for range 100 {
			at := renewalTime(sc)
			if at.Before(issued.Add(lifetime/2)) || at.After(issued.Add(lifetime*8/10)) {
				t.Fatalf("expiry %s: renewal at %s, want between 50%% and 80%% of %s after %s", expiry, at, lifetime, issued)
			}
		}
	}
}
