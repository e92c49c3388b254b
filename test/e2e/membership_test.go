package e2e

// Process-level tests of membership: promoting a worker to a manager,
// demoting a manager, refusing a demotion that would cost the quorum, and
// certificates that renew themselves.

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoal/shoal/api"
)

func (c *cluster) role(n int, hostname string) (api.NodeRole, bool, error) {
	got, err := c.control(n).GetNode(ctxT(c.t, 5*time.Second), &api.GetNodeRequest{NodeId: hostname})
	if err != nil {
		return 0, false, err
	}
	return got.Node.Role, got.Node.ManagerStatus != nil, nil
}

func TestPromoteAndDemote(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(1)
	c.start(2, "--join-addr", c.addr(1), "--join-token", c.joinToken(1, api.NodeRole_NODE_ROLE_WORKER))
	c.start(3, "--join-addr", c.addr(1), "--join-token", c.joinToken(1, api.NodeRole_NODE_ROLE_WORKER))
	eventually(t, 30*time.Second, "two workers ready", func() error {
		out, err := c.shoalctl(1, "node", "ls")
		if err != nil {
			return err
		}
		if got := countLines(out, "Ready"); got != 3 {
			return fmt.Errorf("%d ready nodes:\n%s", got, out)
		}
		return nil
	})

	// The last manager cannot be demoted.
	if out, err := c.shoalctl(1, "node", "demote", "node-1"); err == nil || !contains(out, "last manager") {
		t.Fatalf("demoting the last manager: err %v, output %q", err, out)
	}

	for _, n := range []int{2, 3} {
		if out, err := c.shoalctl(1, "node", "promote", fmt.Sprintf("node-%d", n)); err != nil {
			t.Fatalf("promote node-%d: %v\n%s", n, err, out)
		}
	}
	c.waitManagers(3, 3)
	for _, n := range []int{2, 3} {
		eventually(t, 30*time.Second, fmt.Sprintf("node-%d serves the Control API", n), func() error {
			_, err := c.control(n).ListNodes(ctxT(t, 5*time.Second), &api.ListNodesRequest{})
			return err
		})
		if role, _, err := c.role(1, fmt.Sprintf("node-%d", n)); err != nil || role != api.NodeRole_NODE_ROLE_MANAGER {
			t.Fatalf("node-%d's certificate role after promotion: %v (%v)", n, role, err)
		}
	}

	// With node-3 down, demoting node-2 would leave one reachable
	// manager of two: refused, and nothing changes.
	c.node(3).kill()
	eventually(t, 30*time.Second, "node-3 unreachable", func() error {
		out, err := c.shoalctl(1, "node", "ls")
		if err != nil || !contains(out, "Unreachable") {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	})
	out, err := c.shoalctl(1, "node", "demote", "node-2")
	if err == nil || !contains(out, "quorum") {
		t.Fatalf("demote that breaks quorum: err %v, output %q", err, out)
	}
	if _, isManager, err := c.role(1, "node-2"); err != nil || !isManager {
		t.Fatalf("a refused demotion changed node-2: manager %v (%v)", isManager, err)
	}
	c.start(3)
	c.waitManagers(3, 3)

	// Demote node-3: it leaves raft and carries on as a worker.
	if out, err := c.shoalctl(1, "node", "demote", "node-3"); err != nil {
		t.Fatalf("demote node-3: %v\n%s", err, out)
	}
	c.waitManagers(2, 2)
	eventually(t, 60*time.Second, "node-3 is a ready worker", func() error {
		got, err := c.control(1).GetNode(ctxT(t, 5*time.Second), &api.GetNodeRequest{NodeId: "node-3"})
		if err != nil {
			return err
		}
		n := got.Node
		if n.Role != api.NodeRole_NODE_ROLE_WORKER || n.ManagerStatus != nil || n.Status.GetState() != api.NodeState_NODE_STATE_READY {
			return fmt.Errorf("node-3: role %v, manager status %v, state %v", n.Role, n.ManagerStatus, n.Status.GetState())
		}
		return nil
	})
	// Writes still commit with two managers.
	if err := c.setLabel(ctxT(t, 10*time.Second), 2, "node-1", "after-demote", "yes"); err != nil {
		t.Fatalf("write after demotion: %v", err)
	}
}

func TestCertificatesRenewBeforeExpiry(t *testing.T) {
	c := newCluster(t, append(fastRaft, "--cert-expiry", "1m")...)
	c.initManagers(1)
	c.start(2, "--join-addr", c.addr(1), "--join-token", c.joinToken(1, api.NodeRole_NODE_ROLE_WORKER))
	first := map[string]time.Time{}
	eventually(t, 30*time.Second, "both nodes registered", func() error {
		resp, err := c.control(1).ListNodes(ctxT(t, 5*time.Second), &api.ListNodesRequest{})
		if err != nil {
			return err
		}
		for _, n := range resp.Nodes {
			first[n.Description.GetHostname()] = n.Certificate.GetNotAfter().AsTime()
		}
		if len(first) != 2 {
			return fmt.Errorf("%d nodes", len(first))
		}
		return nil
	})
	// A one-minute certificate renews between 30 s and 48 s into its life.
	eventually(t, 90*time.Second, "both certificates renewed", func() error {
		resp, err := c.control(1).ListNodes(ctxT(t, 5*time.Second), &api.ListNodesRequest{})
		if err != nil {
			return err
		}
		for _, n := range resp.Nodes {
			if !n.Certificate.GetNotAfter().AsTime().After(first[n.Description.GetHostname()]) {
				return fmt.Errorf("%s's certificate still ends at %s", n.Description.GetHostname(), first[n.Description.GetHostname()])
			}
		}
		return nil
	})
	// The renewed credentials on disk are the ones the node uses: after its
	// first certificate expired, they still open a new mTLS connection
	// (the heartbeat of a made-up session is refused as unknown, not as
	// unauthenticated).
	time.Sleep(time.Until(first["node-2"].Add(2 * time.Second)))
	sc := c.credentials(2)
	if !sc.NotAfter().After(first["node-2"]) {
		t.Fatalf("node-2's certificate on disk ends at %s, its first one at %s", sc.NotAfter(), first["node-2"])
	}
	_, err := api.NewDispatcherClient(c.dialAs(sc, 1)).Heartbeat(ctxT(t, 10*time.Second), &api.HeartbeatRequest{SessionId: "made-up"})
	wantCode(t, "heartbeat with the renewed certificate", err, codes.NotFound, "unknown")
}

func TestRemoveDeadManager(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(3)
	c.node(3).kill() // for good
	eventually(t, 30*time.Second, "node-3 down", func() error {
		got, err := c.control(1).GetNode(ctxT(t, 5*time.Second), &api.GetNodeRequest{NodeId: "node-3"})
		if err != nil {
			return err
		}
		if got.Node.Status.GetState() != api.NodeState_NODE_STATE_DOWN {
			return fmt.Errorf("node-3 is %v", got.Node.Status.GetState())
		}
		return nil
	})
	// A manager is demoted (removed from raft) before it can be removed.
	if out, err := c.shoalctl(1, "node", "rm", "node-3"); err == nil || !contains(out, "demote") {
		t.Fatalf("rm of a manager: err %v, output %q", err, out)
	}
	if out, err := c.shoalctl(2, "node", "demote", "node-3"); err != nil {
		t.Fatalf("demote the dead manager: %v\n%s", err, out)
	}
	c.waitManagers(2, 2)

	// Brought back, the demoted node finds it left raft while it was down
	// and carries on as a worker.
	c.start(3)
	eventually(t, 60*time.Second, "node-3 is back as a ready worker", func() error {
		got, err := c.control(1).GetNode(ctxT(t, 5*time.Second), &api.GetNodeRequest{NodeId: "node-3"})
		if err != nil {
			return err
		}
		n := got.Node
		if n.Role != api.NodeRole_NODE_ROLE_WORKER || n.ManagerStatus != nil || n.Status.GetState() != api.NodeState_NODE_STATE_READY {
			return fmt.Errorf("node-3: role %v, manager status %v, state %v", n.Role, n.ManagerStatus, n.Status.GetState())
		}
		return nil
	})
	c.waitManagers(2, 2)
	c.node(3).kill()

	if out, err := c.shoalctl(1, "node", "rm", "--force", "node-3"); err != nil {
		t.Fatalf("rm the demoted dead node: %v\n%s", err, out)
	}
	if ids := c.nodeIDs(1); len(ids) != 2 {
		t.Fatalf("%d nodes after rm, want 2", len(ids))
	}
	// Two managers of two: writes commit.
	if err := c.setLabel(ctxT(t, 10*time.Second), 2, "node-1", "after-rm", "yes"); err != nil {
		t.Fatalf("write after removing the dead manager: %v", err)
	}
}
