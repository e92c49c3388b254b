package docker

// This file holds the tests' stand-in for the CNI manager and the helpers
// that make executors and tasks and look at what the engine holds.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/vishvananda/netlink"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/agent/netns"
	"github.com/shoal/shoal/api"
)

// netCall is one call the executor made to Networks.
type netCall struct {
	Op        string // attach, check, detach
	SandboxID string
	NetNS     string
	TaskID    string // empty for detach
}

// fakeNetworks records calls. Attach and Check fail unless the netns path
// exists; with addr set, Attach also puts a veth pair in the netns, eth0
// holding addr, as a CNI plugin would.
type fakeNetworks struct {
	addr string // e.g. 198.18.0.7/32; "" adds no link

	mu        sync.Mutex
	calls     []netCall
	attachErr error
	checkErr  error
	detachErr error
}

func (f *fakeNetworks) record(c netCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeNetworks) Attach(_ context.Context, sb Sandbox, t *api.Task) error {
	f.record(netCall{"attach", sb.ID, sb.NetNS, t.GetId()})
	if err := needNetNS(sb); err != nil {
		return err
	}
	f.mu.Lock()
	err := f.attachErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if f.addr == "" {
		return nil
	}
	return addVeth(sb.NetNS, f.addr)
}

func (f *fakeNetworks) Check(_ context.Context, sb Sandbox, t *api.Task) error {
	f.record(netCall{"check", sb.ID, sb.NetNS, t.GetId()})
	if err := needNetNS(sb); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkErr
}

func (f *fakeNetworks) Detach(_ context.Context, sb Sandbox) error {
	f.record(netCall{"detach", sb.ID, sb.NetNS, ""})
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.detachErr
}

func (f *fakeNetworks) set(attachErr, checkErr, detachErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attachErr, f.checkErr, f.detachErr = attachErr, checkErr, detachErr
}

// ops lists the calls' operations in order.
func (f *fakeNetworks) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ops []string
	for _, c := range f.calls {
		ops = append(ops, c.Op)
	}
	return ops
}

func (f *fakeNetworks) callsOf(op string) []netCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netCall
	for _, c := range f.calls {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

func needNetNS(sb Sandbox) error {
	if sb.ID == "" || sb.NetNS == "" {
		return fmt.Errorf("fake networks: sandbox %+v has no ID or netns", sb)
	}
	if _, err := os.Stat(sb.NetNS); err != nil {
		return fmt.Errorf("fake networks: the sandbox's netns: %w", err)
	}
	return nil
}

// addVeth puts the veth pair eth0/eth1 in the netns at path, eth0 up with
// addr.
func addVeth(path, addr string) error {
	netns, err := ns.GetNS(path)
	if err != nil {
		return err
	}
	defer netns.Close()
	return netns.Do(func(ns.NetNS) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth: %w", err)
		}
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			return err
		}
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(link, a); err != nil {
			return fmt.Errorf("add address: %w", err)
		}
		return netlink.LinkSetUp(link)
	})
}

// identity is shoal-echo's answer.
type identity struct {
	Hostname, Slot, IP, Task, Service string
}

// echoIdentity reads the first line shoal-echo's TCP port (9000) writes,
// dialled from inside the netns at path.
func echoIdentity(t *testing.T, path string) identity {
	t.Helper()
	netns, err := ns.GetNS(path)
	if err != nil {
		t.Fatalf("open the sandbox's netns: %v", err)
	}
	defer netns.Close()
	var conn net.Conn
	// The socket is made in the netns; reading it afterwards needs no
	// namespace. shoal-echo may still be starting: dial until it answers.
	for give := time.Now().Add(30 * time.Second); ; {
		err = netns.Do(func(ns.NetNS) error {
			var err error
			conn, err = net.Dial("tcp", "127.0.0.1:9000")
			return err
		})
		if err == nil || time.Now().After(give) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dial shoal-echo in the sandbox's netns: %v", err)
	}
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		t.Fatalf("read shoal-echo's identity: %v", err)
	}
	var id identity
	if err := json.Unmarshal(line, &id); err != nil {
		t.Fatalf("shoal-echo's identity %q: %v", line, err)
	}
	return id
}

// newTestExecutor makes an executor of a fresh node on the test engine;
// the node's containers are removed when t ends.
func newTestExecutor(t *testing.T, nets Networks, pull PullPolicy) *Executor {
	t.Helper()
	needEngine(t)
	nodeID := "test-node-" + randomSuffix()
	e, err := New(Config{Client: engine, NodeID: nodeID, Networks: nets, Pull: pull, PauseBinary: pauseBin, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		removeNodeContainers(t, nodeID)
		removePins(t, e.cfg.NetNSDir)
	})
	return e
}

// sameNode makes another executor of e's node: an agent restart.
func sameNode(t *testing.T, e *Executor, nets Networks) *Executor {
	t.Helper()
	e2, err := New(Config{Client: engine, NodeID: e.cfg.NodeID, Networks: nets, PauseBinary: pauseBin, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e2
}

func removeNodeContainers(t *testing.T, nodeID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range nodeContainers(t, nodeID) {
		if _, err := engine.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove test container %s: %v", c.ID, err)
		}
	}
}

// removePins removes the netns pins left in dir, and dir.
func removePins(t *testing.T, dir string) {
	pins, err := netns.List(dir)
	if err != nil {
		t.Errorf("list pins: %v", err)
	}
	for _, p := range pins {
		if err := netns.Unpin(filepath.Join(dir, p)); err != nil {
			t.Errorf("remove a pin: %v", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove the pins' directory: %v", err)
	}
}

// nodeContainers lists the containers labelled with nodeID.
func nodeContainers(t *testing.T, nodeID string) []container.Summary {
	t.Helper()
	list, err := engine.ContainerList(context.Background(), client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", LabelNodeID+"="+nodeID),
	})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	return list.Items
}

// echoTask is a task of a fresh service running shoal-echo with args.
func echoTask(slot uint64, args ...string) *api.Task {
	return &api.Task{
		Id:          api.NewID(),
		ServiceId:   api.NewID(),
		ServiceName: "echo-" + randomSuffix(),
		Slot:        slot,
		Spec: &api.TaskSpec{Container: &api.ContainerSpec{
			Image:           echoImage,
			Args:            args,
			StopGracePeriod: durationpb.New(5 * time.Second),
		}},
	}
}

// inspect returns the container id or name.
func inspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	res, err := engine.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return res.Container
}

// mustController is e's controller of t.
func mustController(t *testing.T, e *Executor, task *api.Task) *controller {
	t.Helper()
	ctl, err := e.Controller(task)
	if err != nil {
		t.Fatal(err)
	}
	return ctl.(*controller)
}

// startTask prepares and starts task on e.
func startTask(t *testing.T, e *Executor, task *api.Task) *controller {
	t.Helper()
	ctl := mustController(t, e, task)
	ctx := context.Background()
	if err := ctl.Prepare(ctx); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if err := ctl.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return ctl
}

// waitAsync runs Wait in the background; the channel gets its result.
func waitAsync(ctl *controller) <-chan error {
	done := make(chan error, 1)
	go func() { done <- ctl.Wait(context.Background()) }()
	return done
}

func hasOps(got []string, want ...string) bool { return slices.Equal(got, want) }
