package overlay

// This file tests the device's life: recreated when a parameter that cannot change in place is
// wrong, corrected in place otherwise, listed by Devices and deleted by Remove.

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// handMadeDevice adds, by hand on node, a VXLAN device named for the test network with the
// parameters Sync would give it, changed by mutate, enslaved to the network's bridge and up.
// It returns the device's index.
func handMadeDevice(t *testing.T, node *testNode, mutate func(*netlink.Vxlan)) int {
	t.Helper()
	s := deviceSpec{name: DeviceName(testNetworkID), vni: testVNI, local: node.vtep, port: DefaultPort, mtu: testMTU}
	vx := s.link()
	mutate(vx)
	index := 0
	inNetns(t, node.ns, func() error {
		if err := netlink.LinkAdd(vx); err != nil {
			return err
		}
		link, err := netlink.LinkByName(vx.Name)
		if err != nil {
			return err
		}
		br, err := netlink.LinkByName(testBridge)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(link, br); err != nil {
			return err
		}
		index = link.Attrs().Index
		return netlink.LinkSetUp(link)
	})
	return index
}

// deviceIndex returns the index of node's device for the test network.
func deviceIndex(t *testing.T, node *testNode) int {
	t.Helper()
	index := 0
	inNetns(t, node.ns, func() error {
		link, err := netlink.LinkByName(DeviceName(testNetworkID))
		if err != nil {
			return err
		}
		index = link.Attrs().Index
		return nil
	})
	return index
}

func TestSyncRecreatesWrongDevice(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*netlink.Vxlan)
	}{
		{"wrong VNI", func(vx *netlink.Vxlan) { vx.VxlanId = 7 }},
		{"wrong port", func(vx *netlink.Vxlan) { vx.Port = 8472 }},
		{"wrong local", func(vx *netlink.Vxlan) { vx.SrcAddr = unusedVTEP.AsSlice() }},
		{"no local", func(vx *netlink.Vxlan) { vx.SrcAddr = nil }},
		{"learning on", func(vx *netlink.Vxlan) { vx.Learning = true }},
		{"proxy off", func(vx *netlink.Vxlan) { vx.Proxy = false }},
		{"default remote", func(vx *netlink.Vxlan) { vx.Group = unusedVTEP.AsSlice() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bed := newTestbed(t, 2)
			node := bed.nodes[0]
			a := bed.nodes[1].addTask(taskIP(70))
			before := handMadeDevice(t, node, tc.mutate)
			want := bed.desired(a)
			if r := node.inspect(want); len(r.Device.Problems) == 0 {
				t.Errorf("Inspect finds no problem with the hand-made device")
			}

			if got, want := node.sync(want), (Changes{Added: 4, DeviceCreated: true}); got != want {
				t.Errorf("Sync changed %+v, want %+v", got, want)
			}
			if after := deviceIndex(t, node); after == before {
				t.Errorf("device kept its index %d: it was not recreated", after)
			}
			node.checkDevice(t, testNetwork)
			node.checkEntries(t, want)
		})
	}
}

func TestSyncCorrectsDeviceInPlace(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(vx netlink.Link) error
		added int // entries the edit loses
	}{
		{"wrong MTU", func(vx netlink.Link) error { return netlink.LinkSetMTU(vx, 1300) }, 0},
		// Down flushes the device's neighbour entries, permanent ones too.
		{"down", netlink.LinkSetDown, 1},
		// Leaving the bridge takes the bridge's entries of the port with it.
		{"not on the bridge", netlink.LinkSetNoMaster, 1},
		{"bridge-port learning on", func(vx netlink.Link) error { return netlink.LinkSetLearning(vx, true) }, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bed := newTestbed(t, 2)
			node := bed.nodes[0]
			a := bed.nodes[1].addTask(taskIP(71))
			want := bed.desired(a)
			node.sync(want)
			before := deviceIndex(t, node)
			inNetns(t, node.ns, func() error {
				link, err := netlink.LinkByIndex(before)
				if err != nil {
					return err
				}
				return tc.edit(link)
			})

			if got, want := node.sync(want), (Changes{Added: tc.added, DeviceUpdated: true}); got != want {
				t.Errorf("Sync changed %+v, want %+v", got, want)
			}
			if after := deviceIndex(t, node); after != before {
				t.Errorf("device was recreated (index %d, was %d), want it corrected in place", after, before)
			}
			node.checkDevice(t, testNetwork)
			node.checkEntries(t, want)
		})
	}
}

func TestRemoveAndDevices(t *testing.T) {
	bed := newTestbed(t, 1)
	node := bed.nodes[0]
	other := Network{ID: "other0123456789", VNI: 4343, Bridge: "shlother01234", MTU: testMTU}
	inNetns(t, node.ns, func() error {
		return addBridge(other.Bridge, testMTU, netip.MustParsePrefix("198.19.8.1/24"))
	})
	node.sync(bed.desired())
	node.sync(Desired{Network: other})
	// A VXLAN device that is not shoal's is never listed.
	inNetns(t, node.ns, func() error {
		return netlink.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vxforeign"}, VxlanId: 99, Port: 4790})
	})

	devices := func() []Device {
		var devs []Device
		inNetns(t, node.ns, func() error {
			var err error
			devs, err = node.mgr.Devices()
			return err
		})
		slices.SortFunc(devs, func(a, b Device) int { return int(a.VNI) - int(b.VNI) })
		return devs
	}
	want := []Device{{DeviceName(testNetworkID), testVNI}, {DeviceName(other.ID), other.VNI}}
	if got := devices(); !slices.Equal(got, want) {
		t.Errorf("Devices = %v, want %v", got, want)
	}

	for range 2 { // removing a device already gone is fine
		inNetns(t, node.ns, func() error { return node.mgr.Remove(testNetworkID) })
	}
	if node.hasDevice(t, DeviceName(testNetworkID)) {
		t.Errorf("device %s still exists after Remove", DeviceName(testNetworkID))
	}
	if got, want := devices(), want[1:]; !slices.Equal(got, want) {
		t.Errorf("Devices after Remove = %v, want %v", got, want)
	}
}
