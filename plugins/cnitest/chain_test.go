package cnitest

import (
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// TestChainWithTuningAndBandwidth runs shoal-bridge followed by the reference
// tuning and bandwidth plugins: each must find what it needs in
// shoal-bridge's result (the container interface, the host veth as its
// peer), and their effects must show in the namespace and on the host veth.
func TestChainWithTuningAndBandwidth(t *testing.T) {
	requireHost(t)
	n := newNetwork(t, networkOptions{chained: []map[string]any{
		{
			"type":    "tuning",
			"sysctl":  map[string]string{"net.ipv4.conf.IFNAME.arp_filter": "1"},
			"promisc": true,
			"dataDir": t.TempDir(),
		},
		{
			"type":         "bandwidth",
			"ingressRate":  8_000_000,
			"ingressBurst": 80_000,
			"egressRate":   4_000_000,
			"egressBurst":  40_000,
		},
	}})
	sb := newSandbox(t)
	capArgs := map[string]any{"ips": []string{n.addr(31)}}
	res := n.add(t, sb, "eth0", capArgs)
	hostVeth := res.Interfaces[1].Name
	if len(res.Interfaces) != 4 {
		t.Fatalf("chain result has interfaces %+v, want shoal-bridge's three and bandwidth's ifb", res.Interfaces)
	}
	ifb := res.Interfaces[3].Name

	// tuning: the sysctl and promiscuous mode inside the namespace.
	sb.do(t, func() error {
		value, err := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/arp_filter")
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(value)); got != "1" {
			t.Errorf("net.ipv4.conf.eth0.arp_filter = %s, want 1 (set by tuning)", got)
		}
		return nil
	})
	if got := sb.link(t, "eth0").Attrs().Promisc; got != 1 {
		t.Errorf("eth0 promisc = %d, want 1 (set by tuning)", got)
	}

	// bandwidth: ingress shaping by a tbf on the host veth, egress shaping
	// by a tbf on an ifb device fed from the host veth.
	if !hasQdisc(t, hostLink(t, hostVeth), "tbf") {
		t.Errorf("host veth %s has no tbf qdisc (set by bandwidth)", hostVeth)
	}
	if link := hostLink(t, ifb); link.Type() != "ifb" || !hasQdisc(t, link, "tbf") {
		t.Errorf("bandwidth's %s is a %s device with qdiscs %v, want an ifb with a tbf", ifb, link.Type(), qdiscTypes(t, link))
	}

	n.mustCNITool(t, "check", sb, "eth0", capArgs)
	n.mustCNITool(t, "del", sb, "eth0", capArgs)
	if hostHasLink(hostVeth) || hostHasLink(ifb) {
		t.Errorf("after DEL: host veth %s exists %t, ifb %s exists %t; want both gone", hostVeth, hostHasLink(hostVeth), ifb, hostHasLink(ifb))
	}
}

func hasQdisc(t *testing.T, link netlink.Link, kind string) bool {
	t.Helper()
	for _, k := range qdiscTypes(t, link) {
		if k == kind {
			return true
		}
	}
	return false
}

func qdiscTypes(t *testing.T, link netlink.Link) []string {
	t.Helper()
	qdiscs, err := netlinksafe.QdiscList(link)
	if err != nil {
		t.Fatalf("qdiscs of %s: %v", link.Attrs().Name, err)
	}
	kinds := make([]string, len(qdiscs))
	for i, q := range qdiscs {
		kinds[i] = q.Type()
	}
	return kinds
}
