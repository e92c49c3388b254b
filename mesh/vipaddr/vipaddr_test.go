package vipaddr

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/shoal/shoal/internal/nstest"
	"github.com/vishvananda/netlink"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// allAddrs lists every IPv4 address of the link, with prefix length.
func allAddrs(t *testing.T, name string) []string {
	t.Helper()
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	list, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		out = append(out, a.IPNet.String())
	}
	slices.Sort(out)
	return out
}

// Sync adds and removes only /32 addresses; the gateway address stays; Read
// reports what Sync left.
func TestSyncKeepsExactlyTheVIPs(t *testing.T) {
	nstest.InTemp(t, func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "shlviptest0"
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			t.Fatal(err)
		}
		br, _ := netlink.LinkByName("shlviptest0")
		gw := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("198.18.40.1").To4(), Mask: net.CIDRMask(24, 32)}}
		if err := netlink.AddrAdd(br, gw); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			vips      []netip.Addr
			want      Changes
			wantAddrs []string
		}{
			{addrs("198.18.40.2", "198.18.40.3"), Changes{Added: 2}, []string{"198.18.40.1/24", "198.18.40.2/32", "198.18.40.3/32"}},
			{addrs("198.18.40.3", "198.18.40.4"), Changes{Added: 1, Removed: 1}, []string{"198.18.40.1/24", "198.18.40.3/32", "198.18.40.4/32"}},
			{addrs("198.18.40.3", "198.18.40.4"), Changes{}, []string{"198.18.40.1/24", "198.18.40.3/32", "198.18.40.4/32"}},
			{nil, Changes{Removed: 2}, []string{"198.18.40.1/24"}},
		}
		for i, st := range steps {
			ch, err := Sync("shlviptest0", st.vips)
			if err != nil {
				t.Fatalf("step %d: Sync: %v", i, err)
			}
			if ch != st.want {
				t.Errorf("step %d: Sync changed %+v, want %+v", i, ch, st.want)
			}
			if got := allAddrs(t, "shlviptest0"); !slices.Equal(got, st.wantAddrs) {
				t.Errorf("step %d: bridge holds %v, want %v", i, got, st.wantAddrs)
			}
			got, err := Read("shlviptest0")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, st.vips) {
				t.Errorf("step %d: Read = %v, want %v", i, got, st.vips)
			}
		}
		return nil
	})
}

func TestSyncRefusesBadInput(t *testing.T) {
	nstest.InTemp(t, func() error {
		if _, err := Sync("shlmissing0", addrs("198.18.40.2")); !errors.Is(err, ErrNoBridge) {
			t.Errorf("Sync on a missing bridge: %v, want ErrNoBridge", err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "shlviptest1"
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "shlviptest1p"}); err != nil {
			t.Fatal(err)
		}
		if _, err := Sync("shlviptest1", addrs("198.18.40.2")); err == nil {
			t.Error("Sync on a veth: no error, want one saying it is not a bridge")
		}
		attrs.Name = "shlviptest2"
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			t.Fatal(err)
		}
		if _, err := Sync("shlviptest2", addrs("198.18.40.2", "fd00::2")); err == nil || err.Error() != `vips[1]: "fd00::2" is not an IPv4 address` {
			t.Errorf("Sync with an IPv6 VIP: %v, want an error naming vips[1]", err)
		}
		if got := allAddrs(t, "shlviptest2"); len(got) != 0 {
			t.Errorf("a refused Sync changed the bridge: %v", got)
		}
		return nil
	})
}
