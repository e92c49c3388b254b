package ca

// This file is the node's side of the CA service: joining a cluster with a
// join token (DownloadRootCA, then RequestCertificate) and renewing the
// node's certificate (Renew). When to renew is renewal.go's job.

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

// ErrDigestMismatch is returned when the root CA a manager serves is not the
// one the join token pins.
var ErrDigestMismatch = errors.New("the join token's CA digest does not match the cluster's CA: wrong cluster or tampered connection")

// DownloadRootCA fetches the cluster's root CA certificate from the manager
// at addr and checks it against the digest in the join token. The TLS
// connection does not verify the manager, since there is nothing yet to
// verify it against; the digest check is what makes the result trustworthy.
func DownloadRootCA(ctx context.Context, addr, token string) (*RootCA, error) {
	tok, err := ParseJoinToken(token)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13,
		// The served root is checked against the token's digest below.
		InsecureSkipVerify: true,
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("download root CA from %s: %w", addr, err)
	}
	defer conn.Close()
	resp, err := api.NewCAClient(conn).GetRootCACertificate(ctx, &api.GetRootCACertificateRequest{})
	if err != nil {
		return nil, remoteError("download root CA from "+addr, err)
	}
	root, err := ParseRootCA(resp.GetCertificatePem(), nil)
	if err != nil {
		return nil, fmt.Errorf("download root CA from %s: %w", addr, err)
	}
	if subtle.ConstantTimeCompare([]byte(root.Digest()), []byte(tok.Digest)) != 1 {
		return nil, ErrDigestMismatch
	}
	return root, nil
}

// RequestCertificate joins the cluster: it downloads and checks the root CA,
// then sends a new key's CSR with the join token to the manager at addr,
// verifying the manager against that root. The token decides the node's
// role. The resulting credentials are saved to dir.
func RequestCertificate(ctx context.Context, addr, token string, desc *api.NodeDescription, advertiseAddr, dir string) (*SecurityConfig, error) {
	root, err := DownloadRootCA(ctx, addr, token)
	if err != nil {
		return nil, err
	}
	keyPEM, csrPEM, err := GenerateKeyAndCSR()
	if err != nil {
		return nil, err
	}
	creds := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    root.Pool(),
		ServerName: ServerName,
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("request node certificate from %s: %w", addr, err)
	}
	defer conn.Close()
	resp, err := api.NewCAClient(conn).IssueNodeCertificate(ctx, &api.IssueNodeCertificateRequest{
		Csr:         csrPEM,
		Token:       token,
		Description: desc,
		Addr:        advertiseAddr,
	})
	if err != nil {
		return nil, remoteError("request node certificate from "+addr, err)
	}
	sc, err := NewSecurityConfig(root, resp.GetCertificatePem(), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate issued by %s: %w", addr, err)
	}
	want := Identity{NodeID: resp.GetNodeId(), ClusterID: resp.GetClusterId(), Role: resp.GetRole()}
	if got := sc.Identity(); got != want {
		return nil, fmt.Errorf("certificate issued by %s names node %s (%s) of cluster %s, the response said node %s (%s) of cluster %s",
			addr, got.NodeID, got.Role.Name(), got.ClusterID, want.NodeID, want.Role.Name(), want.ClusterID)
	}
	if err := sc.Save(dir); err != nil {
		return nil, fmt.Errorf("save node credentials: %w", err)
	}
	return sc, nil
}

// Renew asks the CA service on conn, which must be dialled with
// sc.ClientCredentials, for a certificate for a new key, and installs it in
// sc. The new certificate's role is the node's desired role in the cluster.
func Renew(ctx context.Context, conn *grpc.ClientConn, sc *SecurityConfig) error {
	keyPEM, csrPEM, err := GenerateKeyAndCSR()
	if err != nil {
		return err
	}
	resp, err := api.NewCAClient(conn).RenewNodeCertificate(ctx, &api.RenewNodeCertificateRequest{Csr: csrPEM})
	if err != nil {
		return remoteError("renew node certificate", err)
	}
	return sc.Update(resp.GetCertificatePem(), keyPEM)
}

// rpcError is an error from a CA call. Its message is the server's status
// message verbatim, after what the node was doing; the gRPC status stays
// reachable through errors.As and status.FromError.
type rpcError struct {
	op  string
	err error
}

func remoteError(op string, err error) error { return &rpcError{op: op, err: err} }

func (e *rpcError) Error() string { return e.op + ": " + status.Convert(e.err).Message() }
func (e *rpcError) Unwrap() error { return e.err }
