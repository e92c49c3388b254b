package dataplane

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/overlay"
)

// fakeOverlay holds what it is asked to program, as overlay.Manager programs it: a network's
// last Sync changed by the Updates since, with Peers the VTEPs broadcasts go to (the Sync's
// Peers and every remote endpoint's VTEP).
type fakeOverlay struct {
	mu       sync.Mutex
	synced   map[string]overlay.Desired // by network ID
	explicit map[string][]netip.Addr    // the Peers of each network's last Sync
	devices  []overlay.Device
	removed  []string
	noBridge map[string]bool
	local    netip.Addr // the node's VTEP, which gets no entries
	syncs    int
	updates  int
}

func (f *fakeOverlay) Sync(d overlay.Desired) (overlay.Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noBridge[d.Network.ID] {
		return overlay.Changes{}, overlay.ErrNoBridge
	}
	f.syncs++
	if f.explicit == nil {
		f.explicit = map[string][]netip.Addr{}
	}
	f.explicit[d.Network.ID] = d.Peers
	d.Endpoints = slices.Clone(d.Endpoints)
	f.hold(d)
	return overlay.Changes{Added: 1}, nil
}

// Update applies u to what the network holds; it needs a Sync first, as the Manager does.
func (f *fakeOverlay) Update(id string, u overlay.EndpointUpdate) (overlay.Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.synced[id]
	if !ok {
		return overlay.Changes{}, overlay.ErrNotSynced
	}
	f.updates++
	d.Endpoints = slices.DeleteFunc(slices.Clone(d.Endpoints), func(e overlay.Endpoint) bool {
		return slices.Contains(u.Removed, e.IP) || slices.ContainsFunc(u.Set, func(s overlay.Endpoint) bool { return s.IP == e.IP })
	})
	d.Endpoints = append(d.Endpoints, u.Set...)
	f.hold(d)
	return overlay.Changes{Added: len(u.Set)}, nil
}

// hold records d as the network's state, endpoints sorted, Peers the VTEPs flooded to.
func (f *fakeOverlay) hold(d overlay.Desired) {
	slices.SortFunc(d.Endpoints, func(a, b overlay.Endpoint) int { return a.IP.Compare(b.IP) })
	peers := map[netip.Addr]bool{}
	for _, p := range f.explicit[d.Network.ID] {
		peers[p] = true
	}
	for _, e := range d.Endpoints {
		if e.VTEP != f.local {
			peers[e.VTEP] = true
		}
	}
	d.Peers = slices.SortedFunc(maps.Keys(peers), netip.Addr.Compare)
	f.synced[d.Network.ID] = d
}

func (f *fakeOverlay) Remove(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeOverlay) Devices() ([]overlay.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.devices), nil
}

func (f *fakeOverlay) Inspect(overlay.Desired) (overlay.Report, error) { return overlay.Report{}, nil }

func (f *fakeOverlay) Read(string) (overlay.Kernel, error) { return overlay.Kernel{}, nil }

func (f *fakeOverlay) last(id string) (overlay.Desired, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.synced[id]
	return d, ok
}

// summary renders d's endpoints as "ip→vtep" and its peers.
func summary(d overlay.Desired) string {
	var eps, peers []string
	for _, e := range d.Endpoints {
		eps = append(eps, fmt.Sprintf("%s/%s→%s", e.IP, e.MAC, e.VTEP))
	}
	for _, p := range d.Peers {
		peers = append(peers, p.String())
	}
	return fmt.Sprintf("vni %d bridge %s mtu %d eps %v peers %v", d.Network.VNI, d.Network.Bridge, d.Network.MTU, eps, peers)
}

func ep(task, ip, vtep string) *api.Endpoint {
	a := netip.MustParseAddr(ip).As4()
	return &api.Endpoint{NetworkId: "net1aaaaaaaaaaaa", TaskId: task, Ip: ip, Vtep: vtep,
		Mac: fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", a[0], a[1], a[2], a[3])}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The endpoint views become each network's desired overlay: every endpoint, the other nodes as
// peers; changes are programmed as they come, and a complete view sweeps unknown devices.
func TestControllerProgramsEndpointViews(t *testing.T) {
	f := &fakeOverlay{synced: map[string]overlay.Desired{}, local: netip.MustParseAddr("198.18.0.1"), noBridge: map[string]bool{"net2bbbbbbbbbbbb": true},
		devices: []overlay.Device{{Name: "shxnet1aaaaaa", VNI: 4096}, {Name: "shxgoneaaaaaa", VNI: 4097}}}
	c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: f, MTU: 1450})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	c.SetNetworks([]*api.Network{{Id: "net1aaaaaaaaaaaa", Vni: 4096}, {Id: "net2bbbbbbbbbbbb", Vni: 4098}})
	c.ApplyEndpoints(true, []*api.Endpoint{
		ep("t1", "10.0.0.5", "198.18.0.1"), ep("t2", "10.0.0.6", "198.18.0.2"), ep("t3", "10.0.0.7", "198.18.0.3"),
	}, nil)
	want := "vni 4096 bridge shlnet1aaaaaa mtu 1450 eps [10.0.0.5/02:42:0a:00:00:05→198.18.0.1 10.0.0.6/02:42:0a:00:00:06→198.18.0.2 10.0.0.7/02:42:0a:00:00:07→198.18.0.3] peers [198.18.0.2 198.18.0.3]"
	waitFor(t, "the first view", func() bool { d, ok := f.last("net1aaaaaaaaaaaa"); return ok && summary(d) == want })
	waitFor(t, "the sweep", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return slices.Equal(f.removed, []string{"goneaaaaaa"})
	})

	// t3 moves to this node; t2 is withdrawn.
	c.ApplyEndpoints(false, []*api.Endpoint{ep("t3", "10.0.0.7", "198.18.0.1")}, []*api.EndpointKey{{NetworkId: "net1aaaaaaaaaaaa", TaskId: "t2"}})
	want = "vni 4096 bridge shlnet1aaaaaa mtu 1450 eps [10.0.0.5/02:42:0a:00:00:05→198.18.0.1 10.0.0.7/02:42:0a:00:00:07→198.18.0.1] peers []"
	waitFor(t, "the move", func() bool { d, ok := f.last("net1aaaaaaaaaaaa"); return ok && summary(d) == want })

	// A network without a bridge here is not an error, and Ensure of it neither.
	if err := c.Ensure([]string{"net2bbbbbbbbbbbb", "unknown"}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if _, ok := f.last("net2bbbbbbbbbbbb"); ok {
		t.Fatal("a network without a bridge was programmed")
	}
}

// Before any complete view the repair pass programs but removes nothing: an agent restarted
// while no leader answers keeps its tasks' overlay.
func TestControllerKeepsDevicesUntilAView(t *testing.T) {
	f := &fakeOverlay{synced: map[string]overlay.Desired{}, devices: []overlay.Device{{Name: "shxnet1aaaaaa", VNI: 4096}}}
	c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: f, MTU: 1450, RepairPeriod: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	time.Sleep(100 * time.Millisecond) // ten repair passes
	f.mu.Lock()
	removed := slices.Clone(f.removed)
	f.mu.Unlock()
	if len(removed) != 0 {
		t.Fatalf("repair passes before any view removed %v", removed)
	}
}

// An endpoint the overlay cannot carry, or a second one on an address, is skipped; the rest of
// the network is programmed. A removed network's device goes at once.
func TestControllerSkipsBadEndpoints(t *testing.T) {
	f := &fakeOverlay{synced: map[string]overlay.Desired{}, local: netip.MustParseAddr("198.18.0.1")}
	c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: f, MTU: 1450})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.SetNetworks([]*api.Network{{Id: "net1aaaaaaaaaaaa", Vni: 4096}})
	v6 := ep("t3", "10.0.0.7", "198.18.0.3")
	v6.Ip = "fd00::7"
	c.ApplyEndpoints(true, []*api.Endpoint{
		ep("t1", "10.0.0.5", "198.18.0.2"),
		ep("t2", "10.0.0.5", "198.18.0.3"), // the same address: t1 stands
		v6,
		ep("t4", "10.0.0.8", "127.0.0.1"), // a loopback VTEP
		ep("t5", "10.0.0.9", "198.18.0.3"),
	}, nil)
	want := "vni 4096 bridge shlnet1aaaaaa mtu 1450 eps [10.0.0.5/02:42:0a:00:00:05→198.18.0.2 10.0.0.9/02:42:0a:00:00:09→198.18.0.3] peers [198.18.0.2 198.18.0.3]"
	waitFor(t, "the good endpoints programmed", func() bool { d, ok := f.last("net1aaaaaaaaaaaa"); return ok && summary(d) == want })

	c.RemoveNetworks([]string{"net1aaaaaaaaaaaa"})
	f.mu.Lock()
	removed := slices.Clone(f.removed)
	f.mu.Unlock()
	if !slices.Equal(removed, []string{"net1aaaaaaaaaaaa"}) {
		t.Fatalf("removed %v, want the network's device", removed)
	}
	if _, ok := c.Desired("net1aaaaaaaaaaaa"); ok {
		t.Fatal("a removed network is still known")
	}
}

// A node without a network's bridge pays nothing for the network's endpoint changes: they wait
// for the Sync that a task's attach (Ensure) makes, after which changes are Updates. A network
// already synced is not programmed whole again by the next attach.
func TestControllerProgramsChangedAddressesAlone(t *testing.T) {
	f := &fakeOverlay{synced: map[string]overlay.Desired{}, local: netip.MustParseAddr("198.18.0.1"), noBridge: map[string]bool{"net1aaaaaaaaaaaa": true}}
	c := New(Config{LocalVTEP: netip.MustParseAddr("198.18.0.1"), Overlay: f, MTU: 1450})
	c.SetNetworks([]*api.Network{{Id: "net1aaaaaaaaaaaa", Vni: 4096}})
	c.ApplyEndpoints(true, []*api.Endpoint{ep("t1", "10.0.0.5", "198.18.0.2")}, nil)
	c.pass()
	calls := func() (int, int) { f.mu.Lock(); defer f.mu.Unlock(); return f.syncs, f.updates }
	for i := range 5 {
		c.ApplyEndpoints(false, []*api.Endpoint{ep(fmt.Sprint("t", 10+i), fmt.Sprintf("10.0.0.%d", 10+i), "198.18.0.3")}, nil)
		c.pass()
	}
	if syncs, updates := calls(); syncs != 0 || updates != 0 {
		t.Fatalf("without a bridge: %d Syncs, %d Updates; want none", syncs, updates)
	}

	f.mu.Lock()
	delete(f.noBridge, "net1aaaaaaaaaaaa")
	f.mu.Unlock()
	if err := c.Ensure([]string{"net1aaaaaaaaaaaa"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Ensure([]string{"net1aaaaaaaaaaaa"}); err != nil { // a second task's attach
		t.Fatal(err)
	}
	c.ApplyEndpoints(false, []*api.Endpoint{ep("t1", "10.0.0.5", "198.18.0.3")}, []*api.EndpointKey{{NetworkId: "net1aaaaaaaaaaaa", TaskId: "t10"}})
	c.pass()
	if syncs, updates := calls(); syncs != 1 || updates != 1 {
		t.Fatalf("after the bridge came: %d Syncs, %d Updates; want the attach's Sync, then one Update", syncs, updates)
	}
	d, _ := f.last("net1aaaaaaaaaaaa")
	want := "vni 4096 bridge shlnet1aaaaaa mtu 1450 eps [10.0.0.5/02:42:0a:00:00:05→198.18.0.3 10.0.0.11/02:42:0a:00:00:0b→198.18.0.3 " +
		"10.0.0.12/02:42:0a:00:00:0c→198.18.0.3 10.0.0.13/02:42:0a:00:00:0d→198.18.0.3 10.0.0.14/02:42:0a:00:00:0e→198.18.0.3] peers [198.18.0.3]"
	if summary(d) != want {
		t.Fatalf("the overlay holds\n%s\nwant\n%s", summary(d), want)
	}
}
