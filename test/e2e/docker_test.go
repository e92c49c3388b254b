package e2e

// The Docker executor end to end: one node that is manager and worker runs a service's tasks as
// real containers, attached to a shoal network by shoal's CNI plugins, and keeps each slot's IP
// through a container kill, an image update and an agent crash; removing the service leaves
// nothing behind. And a task removed while its node's agent was down is cleaned up when it returns.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/vishvananda/netlink"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
)

func TestDockerTasks(t *testing.T) {
	cli := needDocker(t)
	c := newCluster(t, dockerFlags()...)
	c.initManagers(1)
	netName, svcName := uniqueName("e2enet"), uniqueName("echo")
	t.Cleanup(func() { removeServiceContainers(cli, svcName) })
	subnet := fmt.Sprintf("198.19.%d.0/24", 100+testNet.Add(0))
	if out, err := c.shoalctl(1, "network", "create", "--subnet", subnet, netName); err != nil {
		t.Fatalf("network create: %v\n%s", err, out)
	}
	network := c.networkByName(netName)
	bridge := cni.BridgeName(network.Id)
	c.removeFromHost(t, network)

	if out, err := c.shoalctl(1, "service", "create", "--name", svcName, "--replicas", "3", "--network", netName,
		"--restart-delay", "100ms", echoImageV1); err != nil {
		t.Fatalf("service create: %v\n%s", err, out)
	}
	addrs := c.waitDockerSlots(t, cli, svcName, 3, echoImageV1)
	t.Logf("slots: %v", addrs)
	pins := 0
	for _, f := range c.attachmentFiles(1) {
		if filepath.Base(filepath.Dir(f)) == "netns" {
			pins++
		}
	}
	if pins != 3 {
		t.Errorf("%d netns pins in node 1's state dir for 3 running tasks: %v", pins, c.attachmentFiles(1))
	}

	// A container killed behind shoal's back: its slot restarts with the same IP.
	victim := taskContainerOfSlot(t, cli, svcName, "2")
	killCtx := ctxT(t, 30*time.Second)
	if _, err := cli.ContainerKill(killCtx, victim.ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("docker kill %s: %v", victim.Name, err)
	}
	eventually(t, 60*time.Second, "slot 2 restarted in a new container", func() error {
		now := taskContainerOfSlot(t, cli, svcName, "2")
		if now.ID == victim.ID || !now.Running {
			return fmt.Errorf("slot 2's task container is %s (running %v)", now.Name, now.Running)
		}
		return nil
	})
	if got := c.waitDockerSlots(t, cli, svcName, 3, echoImageV1); !sameSlots(got, addrs) {
		t.Fatalf("after docker kill the slots hold %v, want %v", got, addrs)
	}

	// An image update rolls through, one task at a time, each slot keeping its IP.
	if out, err := c.shoalctl(1, "service", "update", "--image", echoImageV2, svcName); err != nil {
		t.Fatalf("service update --image: %v\n%s", err, out)
	}
	if got := c.waitDockerSlots(t, cli, svcName, 3, echoImageV2); !sameSlots(got, addrs) {
		t.Fatalf("after the image update the slots hold %v, want %v", got, addrs)
	}

	// kill -9 of the agent (the whole node daemon) and a restart: the running containers are
	// adopted, none duplicated, none orphaned.
	before := containerIDs(containers(t, cli, svcName))
	c.node(1).kill()
	c.start(1)
	eventually(t, 60*time.Second, "node 1 serves again", func() error {
		_, err := c.control(1).GetCluster(ctxT(t, 5*time.Second), &api.GetClusterRequest{})
		return err
	})
	if got := c.waitDockerSlots(t, cli, svcName, 3, echoImageV2); !sameSlots(got, addrs) {
		t.Fatalf("after the agent's restart the slots hold %v, want %v", got, addrs)
	}
	time.Sleep(3 * time.Second) // let the resync's cleanup run: it must remove nothing
	if after := containerIDs(containers(t, cli, svcName)); !slices.Equal(after, before) {
		t.Fatalf("after the agent's restart the containers are %v, were %v: adoption must keep them", after, before)
	}

	// service rm leaves no container, sandbox, veth or CNI cache entry behind.
	if out, err := c.shoalctl(1, "service", "rm", svcName); err != nil {
		t.Fatalf("service rm: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "nothing of the service left", func() error {
		if left := containers(t, cli, svcName); len(left) > 0 {
			return fmt.Errorf("containers left: %v", left)
		}
		if links, err := bridgeLinks(bridge); err != nil || len(links) > 0 {
			return fmt.Errorf("links on %s: %v (%v)", bridge, links, err)
		}
		if files := c.attachmentFiles(1); len(files) > 0 {
			return fmt.Errorf("CNI cache entries or netns pins: %v", files)
		}
		return nil
	})

	// The network removed and another made on its subnet: the old bridge, still holding the
	// gateway, must not take the new network's traffic.
	if out, err := c.shoalctl(1, "network", "rm", netName); err != nil {
		t.Fatalf("network rm: %v\n%s", err, out)
	}
	again, svc2 := uniqueName("e2enet"), uniqueName("echo")
	t.Cleanup(func() { removeServiceContainers(cli, svc2) })
	if out, err := c.shoalctl(1, "network", "create", "--subnet", subnet, again); err != nil {
		t.Fatalf("network create on the same subnet: %v\n%s", err, out)
	}
	c.removeFromHost(t, c.networkByName(again))
	if out, err := c.shoalctl(1, "service", "create", "--name", svc2, "--network", again, echoImageV1); err != nil {
		t.Fatalf("service create on the new network: %v\n%s", err, out)
	}
	c.waitDockerSlots(t, cli, svc2, 1, echoImageV1) // answers at its address from the node
	if _, err := netlink.LinkByName(bridge); err == nil {
		t.Errorf("the removed network's bridge %s is still there, holding the subnet's gateway", bridge)
	}
	if out, err := c.shoalctl(1, "service", "rm", svc2); err != nil {
		t.Fatalf("service rm: %v\n%s", err, out)
	}
}

// A task removed while its node's agent was down is cleaned up when the agent returns: its
// container, its sandbox and its CNI attachment.
func TestDockerTaskRemovedWhileAgentDown(t *testing.T) {
	cli := needDocker(t)
	c := newCluster(t, dockerFlags()...)
	c.initManagers(1)
	c.setAvailability("node-1", api.NodeAvailability_NODE_AVAILABILITY_DRAIN) // tasks go to the worker
	c.start(2, "--join-addr", c.addr(1), "--join-token", c.joinToken(1, api.NodeRole_NODE_ROLE_WORKER))
	c.waitNodeState("node-2", api.NodeState_NODE_STATE_READY)
	netName, svcName := uniqueName("e2enet"), uniqueName("gone")
	t.Cleanup(func() { removeServiceContainers(cli, svcName) })
	subnet := fmt.Sprintf("198.19.%d.0/24", 100+testNet.Add(0))
	if out, err := c.shoalctl(1, "network", "create", "--subnet", subnet, netName); err != nil {
		t.Fatalf("network create: %v\n%s", err, out)
	}
	network := c.networkByName(netName)
	bridge := cni.BridgeName(network.Id)
	c.removeFromHost(t, network)
	if out, err := c.shoalctl(1, "service", "create", "--name", svcName, "--replicas", "2", "--network", netName, echoImageV1); err != nil {
		t.Fatalf("service create: %v\n%s", err, out)
	}
	c.waitDockerSlots(t, cli, svcName, 2, echoImageV1)

	c.node(2).kill()
	if out, err := c.shoalctl(1, "service", "rm", svcName); err != nil {
		t.Fatalf("service rm: %v\n%s", err, out)
	}
	if n := len(containers(t, cli, svcName)); n != 4 {
		t.Fatalf("with the worker's agent down its %d containers should still be there (2 tasks, 2 sandboxes)", n)
	}
	c.start(2)
	eventually(t, 90*time.Second, "the returning agent removed the service's containers and attachments", func() error {
		if left := containers(t, cli, svcName); len(left) > 0 {
			return fmt.Errorf("containers left: %v", left)
		}
		if links, err := bridgeLinks(bridge); err != nil || len(links) > 0 {
			return fmt.Errorf("links on %s: %v (%v)", bridge, links, err)
		}
		if files := c.attachmentFiles(2); len(files) > 0 {
			return fmt.Errorf("CNI cache entries or netns pins: %v", files)
		}
		return nil
	})
}

// waitDockerSlots waits until service runs want tasks on image, each in a container named as
// shoal names them, each with a sandbox whose eth0 holds the task's binding and whose server
// answers there as that slot; it returns slot → address.
func (c *cluster) waitDockerSlots(t *testing.T, cli *client.Client, service string, want int, image string) slotAddrs {
	t.Helper()
	var addrs slotAddrs
	eventually(t, 120*time.Second, fmt.Sprintf("%d tasks of %s running %s in containers", want, service, image), func() error {
		v, err := c.view(service)
		if err != nil {
			return err
		}
		running := v.running()
		if len(running) != want {
			return fmt.Errorf("%d running: %s", len(running), v.summary())
		}
		byTask := map[string]container{}
		sandboxes := map[string]container{}
		for _, ct := range containers(t, cli, service) {
			switch ct.Role {
			case "task":
				byTask[ct.TaskID] = ct
			case "sandbox":
				sandboxes[ct.TaskID] = ct
			}
		}
		addrs = slotAddrs{}
		for _, task := range running {
			if task.Spec.GetContainer().GetImage() != image {
				return fmt.Errorf("task %s runs %s", task.Id, task.Spec.GetContainer().GetImage())
			}
			ct, ok := byTask[task.Id]
			wantName := fmt.Sprintf("%s.%d.%s", service, task.Slot, task.Id)
			if !ok || !ct.Running || ct.Name != wantName {
				return fmt.Errorf("task %s: container %+v, want %s running", task.Id, ct, wantName)
			}
			sb, ok := sandboxes[task.Id]
			if !ok || !sb.Running || sb.Pid == 0 {
				return fmt.Errorf("task %s: sandbox %+v not running", task.Id, sb)
			}
			if len(task.Networks) != 1 {
				return fmt.Errorf("task %s has attachments %v", task.Id, task.Networks)
			}
			addr := task.Networks[0].Address
			onEth0, err := eth0Addrs(sb.Pid)
			if err != nil || !slices.Contains(onEth0, addr) {
				return fmt.Errorf("task %s: eth0 holds %v (%v), want %s", task.Id, onEth0, err, addr)
			}
			id, err := ask(addr)
			if err != nil {
				return fmt.Errorf("task %s at %s: %w", task.Id, addr, err)
			}
			if id.Slot != fmt.Sprint(task.Slot) || id.Task != task.Id {
				return fmt.Errorf("%s answers as %+v, want slot %d task %s", addr, id, task.Slot, task.Id)
			}
			addrs[task.Slot] = addr
		}
		return nil
	})
	return addrs
}

func taskContainerOfSlot(t *testing.T, cli *client.Client, service, slot string) container {
	t.Helper()
	var found container
	for _, ct := range containers(t, cli, service) {
		if ct.Role == "task" && ct.Slot == slot && (found.ID == "" || ct.Running) {
			found = ct
		}
	}
	if found.ID == "" {
		t.Fatalf("no task container of %s slot %s", service, slot)
	}
	return found
}

func containerIDs(cts []container) []string {
	var ids []string
	for _, ct := range cts {
		if ct.Running {
			ids = append(ids, ct.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func sameSlots(a, b slotAddrs) bool {
	if len(a) != len(b) {
		return false
	}
	for slot, addr := range a {
		if b[slot] != addr {
			return false
		}
	}
	return true
}

// networkByName is the network called name, read through node 1.
func (c *cluster) networkByName(name string) *api.Network {
	c.t.Helper()
	resp, err := c.control(1).ListNetworks(ctxT(c.t, 10*time.Second), &api.ListNetworksRequest{})
	if err != nil {
		c.t.Fatalf("list networks: %v", err)
	}
	for _, n := range resp.Networks {
		if n.GetSpec().GetAnnotations().GetName() == name {
			return n
		}
	}
	c.t.Fatalf("no network %s", name)
	return nil
}

// removeFromHost takes a test's network off the host when the test ends: its bridge and the
// firewall rules shoal-bridge made for it (cni.Manager.RemoveNetwork, with shoal's own plugins
// only: the network's extra ones may be missing on purpose).
func (c *cluster) removeFromHost(t *testing.T, n *api.Network) {
	own := &api.Network{Id: n.Id, Spec: &api.NetworkSpec{Annotations: n.GetSpec().GetAnnotations(), Ipam: n.GetSpec().GetIpam()}}
	t.Cleanup(func() {
		m, err := cni.New(cni.Config{BinDirs: []string{cniBinDir}, CacheDir: filepath.Join(c.dir, "cleanup-cni")})
		if err == nil {
			err = m.RemoveNetwork(context.Background(), own)
		}
		if err != nil {
			t.Errorf("take network %s off the host: %v", n.Id, err)
		}
	})
}
