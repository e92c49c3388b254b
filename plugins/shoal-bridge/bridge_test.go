package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/shoal/shoal/overlay"
	"github.com/vishvananda/netlink"
)

// TestEnsureBridge creates a bridge in a throwaway namespace and checks that
// overlay.EnsureBridge and overlay.EnsureGatewayAddrs repair drift, change nothing else, and
// that the bridge keeps its MAC when a port with a lower one joins.
func TestEnsureBridge(t *testing.T) {
	inTempNetns(t, func() error {
		br, err := overlay.EnsureBridge("shltest0", 1450)
		if err != nil {
			return err
		}
		mac := br.Attrs().HardwareAddr.String()
		if br.Attrs().MTU != 1450 || br.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("new bridge: MTU %d up %t, want 1450 and up", br.Attrs().MTU, br.Attrs().Flags&net.FlagUp != 0)
		}

		// Drift: MTU changed and link down.
		if err := netlink.LinkSetMTU(br, 1500); err != nil {
			return err
		}
		if err := netlink.LinkSetDown(br); err != nil {
			return err
		}
		again, err := overlay.EnsureBridge("shltest0", 1450)
		if err != nil {
			return err
		}
		if again.Attrs().Index != br.Attrs().Index || again.Attrs().MTU != 1450 || again.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("ensured bridge: index %d MTU %d up %t, want index %d, 1450, up",
				again.Attrs().Index, again.Attrs().MTU, again.Attrs().Flags&net.FlagUp != 0, br.Attrs().Index)
		}

		gw := &net.IPNet{IP: net.ParseIP("198.18.0.1").To4(), Mask: net.CIDRMask(24, 32)}
		for range 2 {
			if err := overlay.EnsureGatewayAddrs(again, []*net.IPNet{gw}); err != nil {
				return err
			}
		}
		addrs, err := netlinksafe.AddrList(again, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != "198.18.0.1/24" {
			t.Errorf("bridge addresses = %v, want 198.18.0.1/24 once", addrs)
		}
		wider := &net.IPNet{IP: gw.IP, Mask: net.CIDRMask(16, 32)}
		if err := overlay.EnsureGatewayAddrs(again, []*net.IPNet{wider}); err == nil || !strings.Contains(err.Error(), "holds 198.18.0.1/24, want 198.18.0.1/16") {
			t.Errorf("overlay.EnsureGatewayAddrs() with another prefix: error = %v, want a conflict", err)
		}

		// A port with a MAC below the bridge's must not change the bridge's.
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "shvtestport"
		attrs.HardwareAddr = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "shvtestpeer"}); err != nil {
			return err
		}
		port, err := netlinksafe.LinkByName("shvtestport")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(port, again); err != nil {
			return err
		}
		after, err := overlay.BridgeByName("shltest0")
		if err != nil {
			return err
		}
		if got := after.Attrs().HardwareAddr.String(); got != mac {
			t.Errorf("bridge MAC changed from %s to %s when a port joined", mac, got)
		}
		return nil
	})
}

func TestEnsureBridgeRefusesOtherDevice(t *testing.T) {
	inTempNetns(t, func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "shltest1"
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "shltest1peer"}); err != nil {
			return err
		}
		_, err := overlay.EnsureBridge("shltest1", 1450)
		if err == nil || !strings.Contains(err.Error(), `"shltest1" exists but is a veth device, not a bridge`) {
			return fmt.Errorf("overlay.EnsureBridge() on a veth: error = %v, want it refused", err)
		}
		return nil
	})
}

func TestDeleteLinkIfExists(t *testing.T) {
	inTempNetns(t, func() error {
		if err := deleteLinkIfExists("shvabsent0000"); err != nil {
			return fmt.Errorf("deleteLinkIfExists() of a missing link: %w", err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "shvpresent000"
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "peer0"}); err != nil {
			return err
		}
		if err := deleteLinkIfExists("shvpresent000"); err != nil {
			return err
		}
		for _, name := range []string{"shvpresent000", "peer0"} {
			if _, err := netlinksafe.LinkByName(name); !overlay.IsLinkNotFound(err) {
				return errors.Join(fmt.Errorf("%s still exists after deleting the pair", name), err)
			}
		}
		return nil
	})
}

// A removed network's bridge that still holds an address of the subnet a new network's bridge
// is for is deleted when it has no ports, and named in an error when it has.
func TestRemoveStaleBridges(t *testing.T) {
	inTempNetns(t, func() error {
		_, subnet, _ := net.ParseCIDR("198.18.7.0/24")
		gw := &net.IPNet{IP: net.ParseIP("198.18.7.1").To4(), Mask: subnet.Mask}
		old, err := overlay.EnsureBridge("shlold0000aa", 1450)
		if err != nil {
			return err
		}
		if err := overlay.EnsureGatewayAddrs(old, []*net.IPNet{gw}); err != nil {
			return err
		}
		other, err := overlay.EnsureBridge("shlother00bb", 1450) // another subnet: left alone
		if err != nil {
			return err
		}
		if err := overlay.EnsureGatewayAddrs(other, []*net.IPNet{{IP: net.ParseIP("198.18.8.1").To4(), Mask: subnet.Mask}}); err != nil {
			return err
		}
		if _, err := overlay.EnsureBridge("shlnew0000cc", 1450); err != nil {
			return err
		}
		if err := removeStaleBridges("shlnew0000cc", []*net.IPNet{subnet}); err != nil {
			return err
		}
		if _, err := netlinksafe.LinkByName("shlold0000aa"); !overlay.IsLinkNotFound(err) {
			t.Errorf("the stale bridge is still there (%v)", err)
		}
		if _, err := netlinksafe.LinkByName("shlother00bb"); err != nil {
			t.Errorf("the bridge of another subnet was touched: %v", err)
		}

		// With a port, it is the caller's to sort out.
		busy, err := overlay.EnsureBridge("shlbusy000dd", 1450)
		if err != nil {
			return err
		}
		if err := overlay.EnsureGatewayAddrs(busy, []*net.IPNet{gw}); err != nil {
			return err
		}
		port := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "shvtestport"}, PeerName: "shvtestpeer"}
		if err := netlink.LinkAdd(port); err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(port, busy); err != nil {
			return err
		}
		err = removeStaleBridges("shlnew0000cc", []*net.IPNet{subnet})
		if err == nil || !strings.Contains(err.Error(), "shlbusy000dd") || !strings.Contains(err.Error(), "1 ports") {
			t.Errorf("removeStaleBridges with a busy bridge in the subnet: %v, want an error naming it", err)
		}
		return nil
	})
}
