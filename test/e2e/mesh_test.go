package e2e

// This file tests the service mesh end to end on the multi-node test bed, with real containers:
// VIP load balancing across nodes with the client's address kept, DNS names from inside
// containers, ingress and host-mode published ports, no failed request through a rolling update
// and a drain, and the kernel converging back (netctl check clean) after an agent restart and an
// `nft flush ruleset`.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	mdns "github.com/miekg/dns"
	"github.com/moby/moby/client"

	"github.com/shoal/shoal/api"
)

// Published ports of the mesh test's services (inside the bed's nodes: nothing else listens).
const (
	meshIngressPort = 8088
	meshHostPort    = 8089
)

func TestMesh(t *testing.T) {
	cli := needDocker(t)
	netName, web, hostWeb, clientSvc := uniqueName("mesh"), uniqueName("web"), uniqueName("hweb"), uniqueName("cli")
	apiSvc, bothSvc := uniqueName("api"), uniqueName("both")
	// Registered before the cluster, so it runs after the cluster stops: no agent is left to
	// start a removed task's container again.
	t.Cleanup(func() {
		for _, s := range []string{web, hostWeb, clientSvc, apiSvc, bothSvc} {
			removeServiceContainers(cli, s)
		}
	})
	flags := append(slices.Clone(fastRaft), dockerFlags()...)
	// The endpoint grace is a wait for every node to drop a stopping task from its load
	// balancer; make test runs other packages beside this one on two cores, so it gets more than
	// the default.
	c := newBedCluster(t, append(flags, "--dataplane-repair-period", "5s", "--endpoint-grace", "3s")...)
	c.initManagers(3)
	c.startWorkers(4, 4)
	c.waitReady(4)

	subnet := fmt.Sprintf("198.19.%d.0/24", 100+testNet.Add(0))
	if out, err := c.shoalctl(1, "network", "create", "--subnet", subnet, netName); err != nil {
		t.Fatalf("network create: %v\n%s", err, out)
	}
	if out, err := c.shoalctl(1, "service", "create", "--name", web, "--replicas", "3", "--network", netName,
		"--publish", fmt.Sprintf("published=%d,target=8080", meshIngressPort), "--update-parallelism", "1",
		"--restart-delay", "100ms", echoImageV1); err != nil {
		t.Fatalf("service create %s: %v\n%s", web, err, out)
	}
	webTasks := c.waitPlaced(t, web, 3)
	if out, err := c.shoalctl(1, "service", "create", "--name", clientSvc, "--network", netName, echoImageV1); err != nil {
		t.Fatalf("service create %s: %v\n%s", clientSvc, err, out)
	}
	var cl placedTask
	for _, p := range c.waitPlaced(t, clientSvc, 1) {
		cl = p
	}
	vip := c.vipOf(t, web)
	t.Logf("%s: VIP %s, tasks on nodes %v; client on node %d", web, vip, nodesOf(webTasks), cl.node)
	c.waitMeshClean(t, 1, 2, 3, 4)

	t.Run("VIP balances over every replica", func(t *testing.T) { testVIPBalances(t, cl, vip, webTasks) })
	t.Run("a node's own process reaches every replica", func(t *testing.T) { testVIPFromNodes(t, c, vip, webTasks) })
	t.Run("a task reaches itself through its service's VIP", func(t *testing.T) {
		testVIPHairpin(t, cl, c.vipOf(t, clientSvc))
	})
	t.Run("DNS names from inside containers", func(t *testing.T) { testMeshDNS(t, c, cli, web, clientSvc, cl, vip) })
	t.Run("published ports", func(t *testing.T) { testPublishedPorts(t, c, hostWeb) })
	t.Run("rolling update and drain lose no request", func(t *testing.T) {
		testNoFailedRequests(t, c, cli, web, clientSvc, cl, vip)
	})
	t.Run("converges back and check reports changes", func(t *testing.T) { testMeshConverges(t, c, vip) })
	// Last: it adds a second network, which the subtests above do not expect.
	t.Run("DNS names of a task's second network", func(t *testing.T) {
		testMeshDNSTwoNetworks(t, c, cli, netName, apiSvc, bothSvc)
	})
}

// vipOf returns the service's VIP (its only network's).
func (c *cluster) vipOf(t *testing.T, service string) string {
	t.Helper()
	var vip string
	eventually(t, 30*time.Second, "the VIP of "+service, func() error {
		resp, err := c.anyControl().ListBindings(ctxT(t, 5*time.Second), &api.ListBindingsRequest{ServiceIds: []string{service}})
		if err != nil {
			return err
		}
		for _, b := range resp.Bindings {
			if b.Kind == api.IPBinding_KIND_VIP {
				vip = strings.Split(b.Address, "/")[0]
				return nil
			}
		}
		return fmt.Errorf("no VIP binding among %d", len(resp.Bindings))
	})
	return vip
}

// checkOutput runs `netctl check` on a manager that answers for the leader.
func (c *cluster) checkOutput() (string, error) {
	var lastOut string
	var lastErr error
	for _, m := range []int{1, 2, 3} {
		if p := c.node(m); p == nil || p.exited() {
			continue
		}
		out, err := c.netctl(m, "check")
		if err != nil && strings.Contains(err.Error(), "not the leader") {
			lastOut, lastErr = out, err
			continue
		}
		return out, err
	}
	return lastOut, lastErr
}

// waitMeshClean waits until `netctl check` finds nothing to report on any node.
func (c *cluster) waitMeshClean(t *testing.T, nodes ...int) {
	t.Helper()
	eventually(t, 60*time.Second, "netctl check clean", func() error {
		out, err := c.checkOutput()
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		for _, n := range nodes {
			if !strings.Contains(out, fmt.Sprintf("node-%d: clean", n)) {
				return fmt.Errorf("node-%d not reported clean:\n%s", n, out)
			}
		}
		return nil
	})
}

// testVIPBalances sends 1,000 requests to the VIP from the client task: every replica answers,
// each within ±30% of an even share, and every backend saw the client's own address.
func testVIPBalances(t *testing.T, cl placedTask, vip string, tasks map[uint64]placedTask) {
	const requests = 1000
	count := map[string]int{}
	for i := 0; i < requests; i++ {
		id, err := askFrom(cl.netns, vip)
		if err != nil {
			t.Fatalf("request %d to the VIP %s: %v", i, vip, err)
		}
		if id.Peer != cl.ip {
			t.Fatalf("request %d: the backend %s saw the client as %q, want its own address %s", i, id.Task, id.Peer, cl.ip)
		}
		count[id.Task]++
	}
	even := float64(requests) / float64(len(tasks))
	for _, p := range tasks {
		n := count[p.task.Id]
		if float64(n) < 0.7*even || float64(n) > 1.3*even {
			t.Errorf("slot %d (node %d) answered %d of %d requests, want %.0f±30%%", p.task.Slot, p.node, n, requests, even)
		}
	}
	if len(count) != len(tasks) {
		t.Errorf("answered by %d tasks, want the %d replicas: %v", len(count), len(tasks), count)
	}
	t.Logf("1,000 requests through the VIP from node %d: %v", cl.node, count)
}

// testVIPFromNodes asks the VIP from each node's own namespace, as a process of the node (not
// of a task) would, until every replica has answered each node: a backend on another node too.
func testVIPFromNodes(t *testing.T, c *cluster, vip string, tasks map[uint64]placedTask) {
	for n := 1; n <= 4; n++ {
		seen := map[string]bool{}
		for i := 0; i < 200 && len(seen) < len(tasks); i++ {
			id, err := askFrom(c.mustBed().NodeNSPath(n), vip)
			if err != nil {
				t.Fatalf("node-%d: request %d to the VIP %s: %v", n, i, vip, err)
			}
			seen[id.Task] = true
		}
		for _, p := range tasks {
			if !seen[p.task.Id] {
				t.Errorf("node-%d: slot %d (node %d) never answered in 200 requests through the VIP", n, p.task.Slot, p.node)
			}
		}
	}
}

// testVIPHairpin asks a one-replica service's VIP from that replica's own namespace: the
// connection comes back to the task that made it.
func testVIPHairpin(t *testing.T, cl placedTask, vip string) {
	for i := 0; i < 20; i++ {
		id, err := askFrom(cl.netns, vip)
		if err != nil {
			t.Fatalf("request %d from the task to its own service's VIP %s: %v", i, vip, err)
		}
		if id.Task != cl.task.Id {
			t.Fatalf("request %d: answered by %s, want the only replica %s", i, id.Task, cl.task.Id)
		}
	}
}

// lookupIn resolves name inside the service's container, with the container's own resolver.
func lookupIn(t *testing.T, cli *client.Client, service, name string) ([]string, error) {
	t.Helper()
	var id string
	for _, ct := range containers(t, cli, service) {
		if ct.Role == "task" && ct.Running {
			id = ct.ID
		}
	}
	if id == "" {
		return nil, fmt.Errorf("no running task container of %s", service)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", "exec", id, "/shoal-echo", "-lookup", name)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("lookup %s in %s: %w: %s", name, service, err, stderr.String())
	}
	var out struct{ Addrs []string }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("lookup %s: %q: %w", name, stdout.String(), err)
	}
	slices.Sort(out.Addrs)
	return out.Addrs, nil
}

// queryFrom asks the DNS server at server:53 for name's A records from inside the namespace at
// netnsPath, as a container there would.
func queryFrom(netnsPath, server, name string) ([]string, error) {
	var addrs []string
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
		c := &mdns.Client{Timeout: time.Second}
		r, _, err := c.Exchange(m, net.JoinHostPort(server, "53"))
		if err != nil {
			return err
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*mdns.A); ok {
				addrs = append(addrs, a.A.String())
			}
		}
		return nil
	})
	slices.Sort(addrs)
	return addrs, err
}

// testMeshDNS resolves the service, its tasks and each slot from inside the client's container,
// then scales up and times how soon after RUNNING the new slot's name answers.
func testMeshDNS(t *testing.T, c *cluster, cli *client.Client, web, clientSvc string, cl placedTask, vip string) {
	tasks := c.waitPlaced(t, web, 3)
	var all []string
	for _, p := range tasks {
		all = append(all, p.ip)
	}
	slices.Sort(all)
	want := map[string][]string{web: {vip}, "tasks." + web: all}
	for slot, p := range tasks {
		want[fmt.Sprintf("%d.%s", slot, web)] = []string{p.ip}
	}
	for name, addrs := range want {
		got, err := lookupIn(t, cli, clientSvc, name)
		if err != nil || !slices.Equal(got, addrs) {
			t.Errorf("%s from inside a container: %v (%v), want %v", name, got, err, addrs)
		}
	}

	// A new slot's name answers soon after its task runs.
	gateway := netip.MustParsePrefix(c.networkOf(t, cl).Spec.Ipam[0].Subnet).Addr().Next().String()
	if out, err := c.shoalctl(1, "service", "scale", web+"=4"); err != nil {
		t.Fatalf("scale: %v\n%s", err, out)
	}
	var slot4 placedTask
	eventually(t, 120*time.Second, "slot 4 running", func() error {
		placed, err := c.placedTasks(web)
		if err != nil {
			return err
		}
		p, ok := placed[4]
		if !ok {
			return fmt.Errorf("slots %v", nodesOf(placed))
		}
		slot4 = p
		return nil
	})
	running := slot4.task.Status.GetTimestamp().AsTime()
	name := "4." + web
	eventually(t, 30*time.Second, name+" answering", func() error {
		got, err := queryFrom(cl.netns, gateway, name)
		if err != nil || !slices.Equal(got, []string{slot4.ip}) {
			return fmt.Errorf("%v (%v)", got, err)
		}
		return nil
	})
	t.Logf("scaled-up slot: %s answered %s after its task was RUNNING", name, time.Since(running).Round(time.Millisecond))
	c.waitPlaced(t, web, 4)
}

// testMeshDNSTwoNetworks checks that a task on two networks resolves a service of its second
// network at its first network's DNS server, the first nameserver of its resolv.conf: that server
// answers the name itself instead of forwarding it upstream.
func testMeshDNSTwoNetworks(t *testing.T, c *cluster, cli *client.Client, netName, apiSvc, both string) {
	net2 := uniqueName("mesh2")
	if out, err := c.shoalctl(1, "network", "create", "--subnet", fmt.Sprintf("198.19.%d.0/24", 200+testNet.Add(0)), net2); err != nil {
		t.Fatalf("network create: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"--name", apiSvc, "--network", net2},
		{"--name", both, "--network", netName, "--network", net2},
	} {
		if out, err := c.shoalctl(1, append(append([]string{"service", "create"}, args...), echoImageV1)...); err != nil {
			t.Fatalf("service create %v: %v\n%s", args, err, out)
		}
	}
	var p placedTask
	for _, placed := range c.waitPlaced(t, both, 1) {
		p = placed
	}
	first := c.networkOf(t, p)
	if first.GetSpec().GetAnnotations().GetName() != netName {
		t.Fatalf("the task's first network is %s, want %s", first.GetSpec().GetAnnotations().GetName(), netName)
	}
	gateway := netip.MustParsePrefix(first.Spec.Ipam[0].Subnet).Addr().Next().String()
	apiVIP := c.vipOf(t, apiSvc)
	eventually(t, 30*time.Second, apiSvc+" at the first network's server", func() error {
		got, err := queryFrom(p.netns, gateway, apiSvc)
		if err != nil || !slices.Equal(got, []string{apiVIP}) {
			return fmt.Errorf("%v (%v), want [%s]", got, err, apiVIP)
		}
		return nil
	})
	if got, err := lookupIn(t, cli, both, apiSvc); err != nil || !slices.Equal(got, []string{apiVIP}) {
		t.Errorf("%s from inside the two-network container: %v (%v), want [%s]", apiSvc, got, err, apiVIP)
	}
}

// networkOf returns the network the task is attached to.
func (c *cluster) networkOf(t *testing.T, p placedTask) *api.Network {
	t.Helper()
	resp, err := c.anyControl().GetNetwork(ctxT(t, 5*time.Second), &api.GetNetworkRequest{NetworkId: p.task.Networks[0].NetworkId})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Network
}

// testPublishedPorts checks an ingress port on every node's address, from another node, and a
// host-mode port only on its task's node, where the backend sees the client's address.
func testPublishedPorts(t *testing.T, c *cluster, hostWeb string) {
	b := c.mustBed()
	for n := 1; n <= 4; n++ {
		from := b.NodeNSPath(n%4 + 1)
		id, err := askPort(from, c.nodeAddr(n), meshIngressPort)
		if err != nil {
			t.Errorf("ingress port on node %d's address, from node %d: %v", n, n%4+1, err)
			continue
		}
		t.Logf("ingress port on node %d: answered by %s (saw %s)", n, id.Hostname, id.Peer)
	}

	if out, err := c.shoalctl(1, "service", "create", "--name", hostWeb, "--network", c.anyNetworkName(t),
		"--publish", fmt.Sprintf("published=%d,target=8080,mode=host", meshHostPort), echoImageV1); err != nil {
		t.Fatalf("service create %s: %v\n%s", hostWeb, err, out)
	}
	var h placedTask
	for _, p := range c.waitPlaced(t, hostWeb, 1) {
		h = p
	}
	client := h.node%4 + 1
	eventually(t, 30*time.Second, "the host-mode port on its task's node", func() error {
		id, err := askPort(b.NodeNSPath(client), c.nodeAddr(h.node), meshHostPort)
		if err != nil {
			return err
		}
		if id.Task != h.task.Id || id.Peer != c.nodeAddr(client) {
			return fmt.Errorf("answered by %s seeing %s, want %s seeing the client %s", id.Task, id.Peer, h.task.Id, c.nodeAddr(client))
		}
		return nil
	})
	for n := 1; n <= 4; n++ {
		if n == h.node {
			continue
		}
		if id, err := askPort(b.NodeNSPath(client), c.nodeAddr(n), meshHostPort); err == nil {
			t.Errorf("the host-mode port answers on node %d, which runs no task of it (answered by %s)", n, id.Task)
		}
	}
}

// anyNetworkName is the name of the cluster's only user network.
func (c *cluster) anyNetworkName(t *testing.T) string {
	t.Helper()
	resp, err := c.anyControl().ListNetworks(ctxT(t, 5*time.Second), &api.ListNetworksRequest{})
	if err != nil || len(resp.Networks) != 1 {
		t.Fatalf("networks: %v (%v), want one", resp, err)
	}
	return resp.Networks[0].Spec.Annotations.Name
}

// testNoFailedRequests polls the VIP from the client every 10 ms through a rolling update
// (parallelism 1) and a drain of a node running a replica: no request may fail. The drained
// slot's name then resolves to its address at its new place.
func testNoFailedRequests(t *testing.T, c *cluster, cli *client.Client, web, clientSvc string, cl placedTask, vip string) {
	c.waitPlaced(t, web, 4)
	p := startPoller(cl.netns, vip, 10*time.Millisecond)
	if out, err := c.shoalctl(1, "service", "update", "--image", echoImageV2, web); err != nil {
		p.finish()
		t.Fatalf("service update: %v\n%s", err, out)
	}
	eventually(t, 180*time.Second, "every task on the new image", func() error {
		v, err := c.view(web)
		if err != nil {
			return err
		}
		run := v.running()
		for _, task := range run {
			if task.Spec.GetContainer().GetImage() != echoImageV2 {
				return fmt.Errorf("task %s still runs %s", task.Id, task.Spec.GetContainer().GetImage())
			}
		}
		if len(run) != 4 {
			return fmt.Errorf("%d running", len(run))
		}
		return nil
	})
	updated := p.finish()

	// Drain a node running a replica (not the client's), then check the moved slot's name.
	placed := c.waitPlaced(t, web, 4)
	var victim placedTask
	for _, q := range placed {
		if q.node != cl.node && q.node != 1 {
			victim = q
			break
		}
	}
	p = startPoller(cl.netns, vip, 10*time.Millisecond)
	host := fmt.Sprintf("node-%d", victim.node)
	if out, err := c.shoalctl(1, "node", "update", "--availability", "drain", host); err != nil {
		p.finish()
		t.Fatalf("drain %s: %v\n%s", host, err, out)
	}
	moved := c.waitMoved(t, web, victim.task.Slot, victim.task.Id)
	drained := p.finish()
	if moved.ip != victim.ip {
		t.Errorf("slot %d moved from %s to %s", victim.task.Slot, victim.ip, moved.ip)
	}
	// The moved slot's name still gives its address, from inside a container.
	slotName := fmt.Sprintf("%d.%s", victim.task.Slot, web)
	eventually(t, 10*time.Second, slotName+" after the move", func() error {
		got, err := lookupIn(t, cli, clientSvc, slotName)
		if err != nil || !slices.Equal(got, []string{victim.ip}) {
			return fmt.Errorf("%v (%v), want [%s]", got, err, victim.ip)
		}
		return nil
	})
	if out, err := c.shoalctl(1, "node", "update", "--availability", "active", host); err != nil {
		t.Errorf("activate %s: %v\n%s", host, err, out)
	}
	for what, answers := range map[string][]answer{"rolling update": updated, "drain": drained} {
		failed := 0
		first := map[string]time.Time{}
		for _, a := range answers {
			if _, ok := first[a.Task]; a.Task != "" && !ok {
				first[a.Task] = a.At
			}
		}
		for _, a := range answers {
			if a.Task == "" {
				failed++
				var near []string
				for task, at := range first {
					if d := at.Sub(a.At); d > -2*time.Second && d < 2*time.Second {
						near = append(near, fmt.Sprintf("%s first answered %+dms", task, d.Milliseconds()))
					}
				}
				t.Logf("%s: request at %s failed: %s (%s)", what, a.At.Format("15:04:05.000"), a.Err, strings.Join(near, "; "))
			}
		}
		t.Logf("%s: %d requests through the VIP, %d failed, answered by %d tasks", what, len(answers), failed, len(first))
		if failed > 0 {
			t.Errorf("%s: %d of %d requests through the VIP failed", what, failed, len(answers))
		}
	}
}

// testMeshConverges restarts an agent, flushes a node's whole ruleset, and each time waits for
// netctl check to be clean again; then it changes a node's rules by hand and sees check report
// it.
func testMeshConverges(t *testing.T, c *cluster, vip string) {
	c.node(2).kill()
	c.start(2)
	c.waitReady(4)
	c.waitMeshClean(t, 1, 2, 3, 4)

	if out, err := c.inNode(3, "nft", "flush", "ruleset"); err != nil {
		t.Fatalf("nft flush ruleset on node 3: %v\n%s", err, out)
	}
	c.waitMeshClean(t, 1, 2, 3, 4)

	// A hand edit is repaired within the repair period: try until check sees one first.
	seen := false
	for attempt := 0; attempt < 5 && !seen; attempt++ {
		if out, err := c.inNode(4, "nft", "delete", "element", "ip", "shoal", "vips", "{", vip, "}"); err != nil {
			t.Fatalf("delete the VIP from node 4's map: %v\n%s", err, out)
		}
		out, err := c.checkOutput()
		if err != nil && strings.Contains(out, "node-4") && strings.Contains(out, vip) {
			seen = true
			t.Logf("netctl check after a hand edit on node 4:\n%s", out)
			break
		}
		time.Sleep(6 * time.Second) // let the repair put it back before the next try
	}
	if !seen {
		t.Error("netctl check never reported the VIP deleted by hand on node 4")
	}
	c.waitMeshClean(t, 1, 2, 3, 4)
}
