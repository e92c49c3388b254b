package e2e

// Process-level tests of the security model: join tokens, roles,
// certificates of removed nodes, and plain TCP. Every refusal must leave the
// cluster's node list as it was.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/manager"
)

func (c *cluster) nodeIDs(n int) []string {
	c.t.Helper()
	resp, err := c.control(n).ListNodes(ctxT(c.t, 10*time.Second), &api.ListNodesRequest{})
	if err != nil {
		c.t.Fatalf("list nodes: %v", err)
	}
	var ids []string
	for _, node := range resp.Nodes {
		ids = append(ids, node.Id)
	}
	slices.Sort(ids)
	return ids
}

// joinFails starts node n with a token and expects shoald to exit with an
// error containing want.
func (c *cluster) joinFails(n int, token, want string) {
	c.t.Helper()
	p := c.start(n, "--join-addr", c.addr(1), "--join-token", token)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		c.t.Fatalf("shoald %d with a bad token is still running", n)
	}
	if p.cmd.ProcessState.Success() {
		c.t.Fatalf("shoald %d with a bad token exited 0", n)
	}
	if !strings.Contains(p.log.String(), want) {
		c.t.Fatalf("shoald %d's error does not say %q:\n%s", n, want, tail(p.log.String(), 2000))
	}
}

// credentials loads node n's certificate and key.
func (c *cluster) credentials(n int) *ca.SecurityConfig {
	c.t.Helper()
	sc, err := ca.LoadSecurityConfig(filepath.Join(c.node(n).dir, "certificates"))
	if err != nil {
		c.t.Fatalf("load node %d's credentials: %v", n, err)
	}
	return sc
}

func (c *cluster) dialAs(sc *ca.SecurityConfig, n int) *grpc.ClientConn {
	c.t.Helper()
	conn, err := manager.Dial(c.addr(n), sc)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("%s: got %v, want %s mentioning %q", what, err, code, msg)
	}
}

func TestJoinRefusals(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(1)
	before := c.nodeIDs(1)
	good := c.joinToken(1, api.NodeRole_NODE_ROLE_WORKER)

	t.Run("wrong secret", func(t *testing.T) {
		parts := strings.Split(good, "-")
		parts[3] = strings.Repeat("0", len(parts[3]))
		c.joinFails(10, strings.Join(parts, "-"), "invalid join token")
	})
	t.Run("token of another cluster", func(t *testing.T) {
		other := newCluster(t, fastRaft...)
		other.initManagers(1)
		c.joinFails(11, other.joinToken(1, api.NodeRole_NODE_ROLE_WORKER), "does not match the cluster's CA")
	})
	t.Run("malformed token", func(t *testing.T) {
		p := c.start(12, "--join-addr", c.addr(1), "--join-token", "SHOAL-2-abc")
		<-p.done
		if p.cmd.ProcessState.Success() || !strings.Contains(p.log.String(), "--join-token") {
			t.Fatalf("malformed token: %s", tail(p.log.String(), 500))
		}
	})
	t.Run("rotated token", func(t *testing.T) {
		if _, err := c.control(1).RotateJoinToken(ctxT(t, 10*time.Second), &api.RotateJoinTokenRequest{Role: api.NodeRole_NODE_ROLE_WORKER}); err != nil {
			t.Fatal(err)
		}
		c.joinFails(13, good, "invalid join token")
	})
	if after := c.nodeIDs(1); !slices.Equal(before, after) {
		t.Fatalf("refused joins changed the node list: %v -> %v", before, after)
	}
	t.Run("new token works", func(t *testing.T) {
		c.start(14, "--join-addr", c.addr(1), "--join-token", c.joinToken(1, api.NodeRole_NODE_ROLE_WORKER))
		eventually(t, 30*time.Second, "the worker joined", func() error {
			if got := len(c.nodeIDs(1)); got != len(before)+1 {
				return fmt.Errorf("%d nodes", got)
			}
			return nil
		})
	})
}

func TestWorkerCertificateLimits(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(1)
	c.start(2, "--join-addr", c.addr(1), "--join-token", c.joinToken(1, api.NodeRole_NODE_ROLE_WORKER))
	eventually(t, 30*time.Second, "the worker is ready", func() error {
		n, err := c.control(1).GetNode(ctxT(t, 5*time.Second), &api.GetNodeRequest{NodeId: "node-2"})
		if err != nil {
			return err
		}
		if n.Node.Status.GetState() != api.NodeState_NODE_STATE_READY || n.Node.Role != api.NodeRole_NODE_ROLE_WORKER {
			return fmt.Errorf("node-2 is %v, role %v", n.Node.Status.GetState(), n.Node.Role)
		}
		return nil
	})
	before := c.nodeIDs(1)
	worker := c.credentials(2)
	conn := c.dialAs(worker, 1)
	ctx := ctxT(t, 30*time.Second)

	_, err := api.NewControlClient(conn).ListNodes(ctx, &api.ListNodesRequest{})
	wantCode(t, "worker calls Control", err, codes.PermissionDenied, "manager")
	_, err = api.NewControlClient(conn).RemoveNode(ctx, &api.RemoveNodeRequest{NodeId: before[0], Force: true})
	wantCode(t, "worker removes a node", err, codes.PermissionDenied, "manager")
	// A worker certificate cannot make its node a manager by joining raft.
	_, err = api.NewRaftClient(conn).Join(ctx, &api.JoinRaftRequest{NodeId: worker.Identity().NodeID, Addr: c.addr(2)})
	wantCode(t, "worker joins raft", err, codes.PermissionDenied, "manager")
	// Nor by asking the CA for a manager certificate with its worker cert.
	if err := ca.Renew(ctx, conn, worker); err != nil {
		t.Fatalf("worker renews its own certificate: %v", err)
	}
	if worker.Identity().Role != api.NodeRole_NODE_ROLE_WORKER {
		t.Fatalf("a worker's renewal granted role %v", worker.Identity().Role)
	}
	if after := c.nodeIDs(1); !slices.Equal(before, after) {
		t.Fatalf("refused calls changed the node list: %v -> %v", before, after)
	}

	// Plain TCP, no TLS: the handshake fails before any method runs.
	plain, err := grpc.NewClient(c.addr(1), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := api.NewControlClient(plain).ListNodes(pctx, &api.ListNodesRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("plain TCP call: got %v, want Unavailable (no TLS handshake)", err)
	}

	// The removed worker's certificate is refused for any further call.
	c.node(2).kill()
	if _, err := c.shoalctl(1, "node", "rm", "--force", "node-2"); err != nil {
		t.Fatalf("node rm: %v", err)
	}
	_, err = api.NewDispatcherClient(conn).Heartbeat(ctx, &api.HeartbeatRequest{SessionId: "x"})
	wantCode(t, "removed node heartbeats", err, codes.PermissionDenied, "removed")
	err = ca.Renew(ctx, conn, worker)
	wantCode(t, "removed node renews", err, codes.PermissionDenied, "removed")
}
