package e2e

// This file tests the overlay end to end on the multi-node test bed: 3 managers and 2 workers
// (managers run tasks too), real containers, one VXLAN segment across the nodes.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
)

// overlayInspect is what the overlay test reads of `netctl overlay inspect --format json`.
type overlayInspect struct {
	DeviceExists bool     `json:"device_exists"`
	Problems     []string `json:"device_problems"`
	FDB          []struct {
		Key, Desired, Programmed, Status string
	} `json:"fdb"`
	Neighbours []struct {
		Key, Desired, Programmed, Status string
	} `json:"neighbours"`
	BridgeFDB []struct {
		Key, Desired, Programmed, Status string
	} `json:"bridge_fdb"`
}

// differences lists what is not ok.
func (o overlayInspect) differences() []string {
	out := slices.Clone(o.Problems)
	for _, e := range o.FDB {
		if e.Status != "ok" {
			out = append(out, fmt.Sprintf("fdb %s: %s (desired %s, programmed %s)", e.Key, e.Status, e.Desired, e.Programmed))
		}
	}
	for _, e := range o.Neighbours {
		if e.Status != "ok" {
			out = append(out, fmt.Sprintf("neighbour %s: %s (desired %s, programmed %s)", e.Key, e.Status, e.Desired, e.Programmed))
		}
	}
	for _, e := range o.BridgeFDB {
		if e.Status != "ok" {
			out = append(out, fmt.Sprintf("bridge fdb %s: %s (desired %s, programmed %s)", e.Key, e.Status, e.Desired, e.Programmed))
		}
	}
	return out
}

// inspectOverlay runs `netctl overlay inspect` of network on node-n through a manager that
// leads (the leader answers).
func (c *cluster) inspectOverlay(network string, n int) (overlayInspect, error) {
	var o overlayInspect
	var lastErr error
	for _, m := range []int{1, 2, 3} {
		if p := c.node(m); p == nil || p.exited() {
			continue
		}
		out, err := c.netctl(m, "overlay", "inspect", network, "--node", fmt.Sprintf("node-%d", n), "--format", "json")
		if err != nil {
			lastErr = fmt.Errorf("netctl on node %d: %w: %s", m, err, out)
			continue
		}
		return o, json.Unmarshal([]byte(out), &o)
	}
	return o, lastErr
}

// waitOverlayClean waits until netctl shows no difference on any live node.
func (c *cluster) waitOverlayClean(t *testing.T, network string, nodes ...int) {
	t.Helper()
	eventually(t, 60*time.Second, "every node's overlay as desired", func() error {
		for _, n := range nodes {
			o, err := c.inspectOverlay(network, n)
			if err != nil {
				return err
			}
			if !o.DeviceExists {
				return fmt.Errorf("node %d has no overlay device", n)
			}
			if d := o.differences(); len(d) > 0 {
				return fmt.Errorf("node %d: %s", n, strings.Join(d, "; "))
			}
		}
		return nil
	})
}

// waitMoved waits until slot runs as a task other than old, answering, and returns it.
func (c *cluster) waitMoved(t *testing.T, service string, slot uint64, old string) placedTask {
	t.Helper()
	var moved placedTask
	eventually(t, 120*time.Second, fmt.Sprintf("slot %d of %s running again elsewhere", slot, service), func() error {
		placed, err := c.placedTasks(service)
		if err != nil {
			return err
		}
		p, ok := placed[slot]
		if !ok || p.task.Id == old {
			return fmt.Errorf("slot %d still runs %s", slot, old)
		}
		id, err := askFrom(p.netns, p.ip)
		if err != nil || id.Task != p.task.Id {
			return fmt.Errorf("new task %s does not answer yet (%v)", p.task.Id, err)
		}
		moved = p
		return nil
	})
	return moved
}

// clientNotOn returns a task of placed on a node outside avoid.
func clientNotOn(t *testing.T, placed map[uint64]placedTask, avoid ...int) placedTask {
	t.Helper()
	for _, p := range placed {
		if !slices.Contains(avoid, p.node) {
			return p
		}
	}
	t.Fatalf("no task outside nodes %v", avoid)
	return placedTask{}
}

func TestOverlay(t *testing.T) {
	cli := needDocker(t)
	netName, svcName, svc2 := uniqueName("ovl"), uniqueName("echo"), uniqueName("echo")
	// Registered first, so it runs last: once the nodes are killed, nothing restarts the
	// containers it removes.
	t.Cleanup(func() {
		removeServiceContainers(cli, svcName)
		removeServiceContainers(cli, svc2)
	})
	c := newBedCluster(t, append(slices.Clone(fastRaft), dockerFlags()...)...)
	c.initManagers(3)
	c.startWorkers(4, 5)
	c.waitReady(5)

	subnet := fmt.Sprintf("198.19.%d.0/24", 100+testNet.Add(0))
	if out, err := c.shoalctl(1, "network", "create", "--subnet", subnet, netName); err != nil {
		t.Fatalf("network create: %v\n%s", err, out)
	}
	if out, err := c.shoalctl(1, "service", "create", "--name", svcName, "--replicas", "5", "--network", netName,
		"--restart-delay", "100ms", echoImageV1); err != nil {
		t.Fatalf("service create: %v\n%s", err, out)
	}
	placed := c.waitPlaced(t, svcName, 5)
	if nodes := nodesOf(placed); !slices.Equal(nodes, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("tasks on nodes %v, want one on each of the 5", nodes)
	}

	// Tasks on different nodes reach each other, TCP and ICMP.
	for _, from := range placed {
		for _, to := range placed {
			if from.node == to.node {
				continue
			}
			if id, err := askFrom(from.netns, to.ip); err != nil || id.Task != to.task.Id {
				t.Errorf("TCP node %d → %s on node %d: %+v, %v", from.node, to.ip, to.node, id, err)
			}
			if err := pingFrom(from.netns, to.ip); err != nil {
				t.Errorf("ICMP node %d → %s on node %d: %v", from.node, to.ip, to.node, err)
			}
		}
	}
	if out, err := c.netctl(1, "overlay", "ls"); err != nil || !strings.Contains(out, netName) {
		t.Errorf("netctl overlay ls: %v\n%s", err, out)
	} else {
		t.Logf("netctl overlay ls:\n%s", out)
	}
	c.waitOverlayClean(t, netName, 1, 2, 3, 4, 5)
	if t.Failed() {
		t.FailNow()
	}

	t.Run("agent restart converges", func(t *testing.T) { testOverlayAgentRestart(t, c, netName, placed) })
	t.Run("drain", func(t *testing.T) { placed = testOverlayDrain(t, c, svcName, placed) })
	t.Run("node failure and partition", func(t *testing.T) { placed = testOverlayNodeFailure(t, c, cli, svcName, placed) })
	t.Run("leader killed under a TCP stream", func(t *testing.T) { testOverlayLeaderKill(t, c, placed) })
	t.Run("network removed and made again", func(t *testing.T) {
		testOverlayNetworkRecreated(t, c, cli, netName, subnet, svcName, svc2)
	})
}

// testOverlayNetworkRecreated removes the service and its network, makes the network again on
// the same subnet (it gets the same VNI: the lowest free) and runs tasks on it across nodes: each
// node took the old network's device and bridge off when it was removed.
func testOverlayNetworkRecreated(t *testing.T, c *cluster, cli *client.Client, netName, subnet, svcName, svc2 string) {
	c.waitReady(5)
	eventually(t, 60*time.Second, "a leader every manager knows", func() error {
		for m := 1; m <= 3; m++ {
			if _, err := c.leader(m); err != nil {
				return err
			}
		}
		return nil
	})
	old := c.networkByName(netName)
	if out, err := c.shoalctl(1, "service", "rm", svcName); err != nil {
		t.Fatalf("service rm: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "the service's containers gone", func() error {
		if left := containers(t, cli, svcName); len(left) > 0 {
			return fmt.Errorf("%d containers left", len(left))
		}
		return nil
	})
	eventually(t, 60*time.Second, "network rm", func() error {
		out, err := c.shoalctl(1, "network", "rm", netName)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	dev, bridge := "shx"+old.Id[:10], "shl"+old.Id[:10]
	eventually(t, 30*time.Second, "the old network's device and bridge off every node", func() error {
		for n := 1; n <= 5; n++ {
			for _, link := range []string{dev, bridge} {
				if out, err := c.inNode(n, "ip", "link", "show", link); err == nil {
					return fmt.Errorf("node %d still has %s:\n%s", n, link, out)
				}
			}
		}
		return nil
	})
	if out, err := c.shoalctl(1, "network", "create", "--subnet", subnet, netName); err != nil {
		t.Fatalf("network create again: %v\n%s", err, out)
	}
	if nw := c.networkByName(netName); nw.Vni != old.Vni {
		t.Logf("the new network got VNI %d (the old one had %d)", nw.Vni, old.Vni)
	}
	if out, err := c.shoalctl(1, "service", "create", "--name", svc2, "--replicas", "5", "--network", netName,
		"--restart-delay", "100ms", echoImageV1); err != nil {
		t.Fatalf("service create: %v\n%s", err, out)
	}
	placed := c.waitPlaced(t, svc2, 5)
	for _, from := range placed {
		for _, to := range placed {
			if from.node != to.node {
				if id, err := askFrom(from.netns, to.ip); err != nil || id.Task != to.task.Id {
					t.Errorf("node %d → %s on node %d on the new network: %+v, %v", from.node, to.ip, to.node, id, err)
				}
			}
		}
	}
}

// testOverlayAgentRestart damages node 2's entries (FDB, neighbour, bridge) by hand, sees netctl report it, restarts its
// agent with kill -9, and waits for every node's kernel to be as desired again.
func testOverlayAgentRestart(t *testing.T, c *cluster, netName string, placed map[uint64]placedTask) {
	peer, _ := onNode(placed, 3)
	dev := "shx" + c.networkByName(netName).Id[:10]
	mac := ipam.MACOf(netip.MustParseAddr(peer.ip)).String()
	if out, err := c.inNode(2, "bridge", "fdb", "del", mac, "dev", dev, "dst", c.nodeAddr(3)); err != nil {
		t.Fatalf("delete an FDB entry on node 2: %v\n%s", err, out)
	}
	if out, err := c.inNode(2, "ip", "neigh", "replace", peer.ip, "lladdr", "02:42:00:00:00:01", "dev", dev, "nud", "permanent"); err != nil {
		t.Fatalf("change a neighbour entry on node 2: %v\n%s", err, out)
	}
	if out, err := c.inNode(2, "bridge", "fdb", "del", mac, "dev", dev, "master"); err != nil {
		t.Fatalf("delete a bridge entry on node 2: %v\n%s", err, out)
	}
	o, err := c.inspectOverlay(netName, 2)
	if err != nil {
		t.Fatal(err)
	}
	diffs := o.differences()
	t.Logf("netctl after the hand edits on node 2: %v", diffs)
	if len(diffs) != 3 || !strings.Contains(diffs[0], mac+": missing") || !strings.Contains(diffs[1], peer.ip+": wrong") ||
		!strings.Contains(diffs[2], "bridge fdb "+mac+": missing") {
		t.Errorf("netctl shows %q, want the missing FDB entry of %s, the wrong neighbour %s and the missing bridge entry of %s", diffs, mac, peer.ip, mac)
	}

	c.node(2).kill()
	c.start(2)
	c.waitReady(5)
	c.waitOverlayClean(t, netName, 1, 2, 3, 4, 5)
}

// testOverlayDrain drains worker 5: its task comes up elsewhere with the same IP, and a client
// on a third node reaches it again; the time from RUNNING to reached is logged.
func testOverlayDrain(t *testing.T, c *cluster, svcName string, placed map[uint64]placedTask) map[uint64]placedTask {
	old, ok := onNode(placed, 5)
	if !ok {
		t.Fatal("no task on node 5")
	}
	// Two clients: the new task lands on one node at most.
	a := clientNotOn(t, placed, 5)
	b := clientNotOn(t, placed, 5, a.node)
	pa, pb := startPoller(a.netns, old.ip, 20*time.Millisecond), startPoller(b.netns, old.ip, 20*time.Millisecond)
	c.setAvailability("node-5", api.NodeAvailability_NODE_AVAILABILITY_DRAIN)
	moved := c.waitMoved(t, svcName, old.task.Slot, old.task.Id)
	pa.waitFor(moved.task.Id, 30*time.Second)
	pb.waitFor(moved.task.Id, 30*time.Second)
	time.Sleep(200 * time.Millisecond) // a few more polls
	answersA, answersB := pa.finish(), pb.finish()
	if moved.ip != old.ip || moved.node == 5 {
		t.Fatalf("slot %d moved to node %d at %s, want another node with %s", old.task.Slot, moved.node, moved.ip, old.ip)
	}
	client, answers := a, answersA
	if a.node == moved.node {
		client, answers = b, answersB
	}
	checkOneResponder(t, old.ip, answers, old.task.Id, moved.task.Id)
	running := moved.task.Status.GetTimestamp().AsTime()
	if first, ok := firstAnswerBy(answers, moved.task.Id); ok {
		t.Logf("drain: slot %d moved from node 5 to node %d with %s; the client on node %d reached it %v after it was RUNNING",
			old.task.Slot, moved.node, moved.ip, client.node, first.Sub(running).Round(time.Millisecond))
	} else {
		t.Errorf("the client on node %d never reached the moved task", client.node)
	}
	c.setAvailability("node-5", api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)
	placed, err := c.placedTasks(svcName)
	if err != nil {
		t.Fatal(err)
	}
	return placed
}

// testOverlayNodeFailure kills worker 4's shoald and cuts its link: its task comes back
// elsewhere with its IP after the down grace; when the node returns its stale containers are
// removed; a client on a third node sees one responder for the address throughout.
func testOverlayNodeFailure(t *testing.T, c *cluster, cli *client.Client, svcName string, placed map[uint64]placedTask) map[uint64]placedTask {
	old, ok := onNode(placed, 4)
	if !ok {
		t.Fatal("no task on node 4")
	}
	a := clientNotOn(t, placed, 4)
	b := clientNotOn(t, placed, 4, a.node)
	pa, pb := startPoller(a.netns, old.ip, 20*time.Millisecond), startPoller(b.netns, old.ip, 20*time.Millisecond)
	c.node(4).kill()
	c.cut(4)
	moved := c.waitMoved(t, svcName, old.task.Slot, old.task.Id)
	if moved.ip != old.ip || moved.node == 4 {
		t.Fatalf("slot %d moved to node %d at %s, want another node with %s", old.task.Slot, moved.node, moved.ip, old.ip)
	}
	// Every third-node client reaches the new task before node 4 returns, so that the polls
	// after its return show whether its stale container ever answers again. A poll that was
	// dialling node 4 when the address moved waits out its own timeout first.
	for _, p := range []struct {
		client placedTask
		poll   *poller
	}{{a, pa}, {b, pb}} {
		if p.client.node != moved.node && !p.poll.waitFor(moved.task.Id, 30*time.Second) {
			last := p.poll.last()
			t.Errorf("the client on node %d did not reach the moved task %s at %s within 30 s (last poll: answered by %q, error %q)",
				p.client.node, moved.task.Id, old.ip, last.Task, last.Err)
		}
	}
	c.heal(4)
	c.start(4)
	c.waitReady(5)
	// The old task was orphaned (its slot and address went to the new one): as the node
	// returns, its agent removes its containers and namespace.
	eventually(t, 60*time.Second, "node 4's stale containers removed", func() error {
		for _, ct := range containers(t, cli, svcName) {
			if ct.TaskID == old.task.Id {
				return fmt.Errorf("%s (%s) of the old task is still there (running %v)", ct.Name, ct.Role, ct.Running)
			}
		}
		if _, err := os.Stat(old.netns); !os.IsNotExist(err) {
			return fmt.Errorf("the old task's netns pin %s is still there (%v)", old.netns, err)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // polls after the node's return
	for _, p := range []struct {
		client  placedTask
		answers []answer
	}{{a, pa.finish()}, {b, pb.finish()}} {
		if p.client.node == moved.node {
			continue // local to the new task: not a third node
		}
		checkOneResponder(t, old.ip, p.answers, old.task.Id, moved.task.Id)
		reached := "never reached it"
		if first, ok := firstAnswerBy(p.answers, moved.task.Id); ok {
			reached = fmt.Sprintf("reached it %v after it was RUNNING", first.Sub(moved.task.Status.GetTimestamp().AsTime()).Round(time.Millisecond))
		}
		t.Logf("node failure: slot %d moved from node 4 to node %d; the client on node %d saw %s and %s",
			old.task.Slot, moved.node, p.client.node, strings.Join(responders(p.answers), " → "), reached)
	}
	placed, err := c.placedTasks(svcName)
	if err != nil {
		t.Fatal(err)
	}
	return placed
}

// testOverlayLeaderKill streams TCP from a task to a task on another node, neither on the
// leader's node, while the leader is killed: the stream goes on. The longest gap is logged.
func testOverlayLeaderKill(t *testing.T, c *cluster, placed map[uint64]placedTask) {
	leader, err := c.leader(1)
	if err != nil {
		t.Fatal(err)
	}
	from := clientNotOn(t, placed, leader)
	to := clientNotOn(t, placed, leader, from.node)
	conn, err := dialFrom(from.netns, net.JoinHostPort(to.ip, "9000"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil { // the server's identity line
		t.Fatal(err)
	}
	type result struct {
		maxGap time.Duration
		echoes int
		err    error
	}
	done := make(chan result, 1)
	stop := make(chan struct{})
	go func() {
		var res result
		msg := []byte("0123456789abcdef")
		buf := make([]byte, len(msg))
		last := time.Now()
		for {
			select {
			case <-stop:
				done <- res
				return
			default:
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(msg); err != nil {
				res.err = err
				done <- res
				return
			}
			if _, err := io.ReadFull(r, buf); err != nil {
				res.err = err
				done <- res
				return
			}
			now := time.Now()
			res.maxGap = max(res.maxGap, now.Sub(last))
			last = now
			res.echoes++
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	c.node(leader).kill()
	eventually(t, 60*time.Second, "a new leader", func() error {
		for _, m := range []int{1, 2, 3} {
			if m == leader {
				continue
			}
			if l, err := c.leader(m); err == nil && l != leader {
				return nil
			}
		}
		return fmt.Errorf("no new leader yet")
	})
	time.Sleep(time.Second)
	close(stop)
	res := <-done
	if res.err != nil {
		t.Fatalf("the stream from node %d to node %d broke when leader node %d was killed: %v", from.node, to.node, leader, res.err)
	}
	t.Logf("leader kill: %d echoes between node %d and node %d; longest gap %v", res.echoes, from.node, to.node, res.maxGap.Round(time.Millisecond))
	if res.maxGap > 200*time.Millisecond {
		t.Errorf("the stream stalled for %v while the leader was replaced (want at most 200ms)", res.maxGap)
	}
	c.start(leader)
}
