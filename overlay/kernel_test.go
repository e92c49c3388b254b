package overlay

// This file reads a node's kernel state straight through netlink, independently of the code under
// test, and checks it against a Desired: the device's parameters, its FDB and neighbour entries,
// and the bridge's forwarding entries on its port.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernelEntries returns the device's own FDB entries ("MAC dst VTEP") and neighbour entries
// ("IP lladdr MAC"), with " (not permanent)" appended to those that are not, sorted.
func (node *testNode) kernelEntries(t *testing.T, device string) (fdb, neigh []string) {
	t.Helper()
	for _, n := range node.dumpFDB(t, device) {
		if n.Flags&netlink.NTF_SELF != 0 {
			fdb = append(fdb, fmt.Sprintf("%s dst %s", n.HardwareAddr, n.IP)+permanence(n))
		}
	}
	inNetns(t, node.ns, func() error {
		link, err := netlink.LinkByName(device)
		if err != nil {
			return err
		}
		neighs, err := netlink.NeighList(link.Attrs().Index, unix.AF_INET)
		if err != nil {
			return fmt.Errorf("dump neighbours: %w", err)
		}
		for _, n := range neighs {
			neigh = append(neigh, fmt.Sprintf("%s lladdr %s", n.IP, n.HardwareAddr)+permanence(n))
		}
		return nil
	})
	slices.Sort(fdb)
	slices.Sort(neigh)
	return fdb, neigh
}

// dumpFDB dumps the AF_BRIDGE table of the device: its own entries (flag self) and the
// bridge's entries on its port, the bridge's entry of the device's own MAC left out.
func (node *testNode) dumpFDB(t *testing.T, device string) []netlink.Neigh {
	t.Helper()
	var out []netlink.Neigh
	inNetns(t, node.ns, func() error {
		link, err := netlink.LinkByName(device)
		if err != nil {
			return err
		}
		all, err := netlink.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
		if err != nil {
			return fmt.Errorf("dump FDB: %w", err)
		}
		for _, n := range all {
			if n.Flags&netlink.NTF_SELF != 0 || !bytes.Equal(n.HardwareAddr, link.Attrs().HardwareAddr) {
				out = append(out, n)
			}
		}
		return nil
	})
	return out
}

func permanence(n netlink.Neigh) string {
	if n.State&netlink.NUD_PERMANENT == 0 {
		return " (not permanent)"
	}
	return ""
}

// expectedEntries are the entries node must hold for d, formatted as kernelEntries does: one
// FDB entry per MAC of the remote endpoints, one neighbour entry per remote endpoint, and one
// all-zeros destination per VTEP in d.Peers or of a remote endpoint.
func (node *testNode) expectedEntries(d Desired) (fdb, neigh []string) {
	flood := func(vtep netip.Addr) string {
		return fmt.Sprintf("%s dst %s", net.HardwareAddr{0, 0, 0, 0, 0, 0}, vtep)
	}
	for _, ep := range d.Endpoints {
		if ep.VTEP == node.vtep {
			continue
		}
		fdb = append(fdb, fmt.Sprintf("%s dst %s", ep.MAC, ep.VTEP), flood(ep.VTEP))
		neigh = append(neigh, fmt.Sprintf("%s lladdr %s", ep.IP, ep.MAC))
	}
	for _, p := range d.Peers {
		if p != node.vtep {
			fdb = append(fdb, flood(p))
		}
	}
	slices.Sort(fdb)
	slices.Sort(neigh)
	return slices.Compact(fdb), neigh
}

// kernelBridgeEntries returns the bridge's forwarding entries on the device's port (no flag
// self), as "MAC static", "MAC learnt" or "MAC local", sorted.
func (node *testNode) kernelBridgeEntries(t *testing.T, device string) []string {
	t.Helper()
	var out []string
	for _, n := range node.dumpFDB(t, device) {
		if n.Flags&netlink.NTF_SELF != 0 {
			continue
		}
		kind := "learnt"
		switch {
		case n.State&netlink.NUD_PERMANENT != 0:
			kind = "local"
		case n.State&netlink.NUD_NOARP != 0:
			kind = "static"
		}
		out = append(out, fmt.Sprintf("%s %s", n.HardwareAddr, kind))
	}
	slices.Sort(out)
	return out
}

// expectedBridgeEntries are the bridge entries node must hold for d, formatted as
// kernelBridgeEntries does: a static one per MAC of the remote endpoints.
func (node *testNode) expectedBridgeEntries(d Desired) []string {
	var out []string
	for _, ep := range d.Endpoints {
		if ep.VTEP != node.vtep {
			out = append(out, fmt.Sprintf("%s static", ep.MAC))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkEntries fails the test unless node's kernel holds exactly d's entries.
func (node *testNode) checkEntries(t *testing.T, d Desired) {
	t.Helper()
	if got, want := node.kernelBridgeEntries(t, DeviceName(d.Network.ID)), node.expectedBridgeEntries(d); !slices.Equal(got, want) {
		t.Errorf("%s: bridge entries on the device's port:\n got  %q\n want %q", node.name, got, want)
	}
	gotFDB, gotNeigh := node.kernelEntries(t, DeviceName(d.Network.ID))
	wantFDB, wantNeigh := node.expectedEntries(d)
	if !slices.Equal(gotFDB, wantFDB) {
		t.Errorf("%s: FDB entries:\n got  %q\n want %q", node.name, gotFDB, wantFDB)
	}
	if !slices.Equal(gotNeigh, wantNeigh) {
		t.Errorf("%s: neighbour entries:\n got  %q\n want %q", node.name, gotNeigh, wantNeigh)
	}
}

// checkDevice fails the test unless node's device for n is as Sync must leave it.
func (node *testNode) checkDevice(t *testing.T, n Network) {
	t.Helper()
	inNetns(t, node.ns, func() error {
		link, err := netlink.LinkByName(DeviceName(n.ID))
		if err != nil {
			return err
		}
		vx, ok := link.(*netlink.Vxlan)
		if !ok {
			return fmt.Errorf("%s: device is a %s", node.name, link.Type())
		}
		br, err := netlink.LinkByName(n.Bridge)
		if err != nil {
			return err
		}
		info, err := netlink.LinkGetProtinfo(vx)
		if err != nil {
			return fmt.Errorf("read bridge-port settings: %w", err)
		}
		checks := []struct {
			what      string
			got, want any
		}{
			{"VNI", vx.VxlanId, int(n.VNI)},
			{"local", vx.SrcAddr.String(), node.vtep.String()},
			{"port", vx.Port, DefaultPort},
			{"learning", vx.Learning, false},
			{"proxy", vx.Proxy, true},
			{"group", len(vx.Group), 0},
			{"MTU", vx.MTU, n.MTU},
			{"master", vx.MasterIndex, br.Attrs().Index},
			{"up", vx.Flags&net.FlagUp != 0, true},
			{"bridge-port learning", info.Learning, false},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: device %s: %s is %v, want %v", node.name, vx.Name, c.what, c.got, c.want)
			}
		}
		return nil
	})
}

// hasDevice reports whether node has a link called name.
func (node *testNode) hasDevice(t *testing.T, name string) bool {
	t.Helper()
	found := false
	inNetns(t, node.ns, func() error {
		_, err := netlink.LinkByName(name)
		found = err == nil
		return nil
	})
	return found
}
