package cnitest

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestPingAcrossBridge attaches two namespaces to one bridge and has them
// ping each other. This host runs Docker, whose FORWARD policy is DROP, and
// br_netfilter sends even bridged traffic through FORWARD: the pings pass only
// through shoal-bridge's rules, which the rule's packet counter confirms. The
// rules stay while the bridge exists and GC removes them once it is gone.
func TestPingAcrossBridge(t *testing.T) {
	requireHost(t)
	n := newNetwork(t, networkOptions{ipMasq: true})
	a, b := newSandbox(t), newSandbox(t)
	addrA, addrB := n.addr(41), n.addr(42)
	// No MAC in the capability arguments: shoal-bridge derives 02:42 and
	// the IPv4 address, as Docker does.
	resA := n.add(t, a, "eth0", map[string]any{"ips": []string{addrA}})
	n.add(t, b, "eth0", map[string]any{"ips": []string{addrB}})
	if got := resA.Interfaces[2].Mac; got != macOf(t, addrA) {
		t.Errorf("derived MAC = %s, want %s", got, macOf(t, addrA))
	}

	forward, postrouting := shoalChains[0], shoalChains[1]
	if policy := forwardPolicy(t); policy != "DROP" {
		t.Logf("FORWARD policy is %s, not DROP: the pings do not prove the rules on this host", policy)
	}
	between := "-i " + n.bridge + " -o " + n.bridge
	before := rulePackets(t, forward, n.bridge, between)
	if err := ping(t, a, addrOf(t, addrB)); err != nil {
		t.Fatalf("ping from a to b: %v", err)
	}
	if err := ping(t, b, addrOf(t, addrA)); err != nil {
		t.Fatalf("ping from b to a: %v", err)
	}
	if !bridgedTrafficFiltered() {
		t.Log("br_netfilter does not pass bridged traffic to iptables here: the rule's counter cannot move")
	} else if after := rulePackets(t, forward, n.bridge, between); after <= before {
		t.Errorf("rule %q counted %d packets before the pings and %d after; the pings did not pass through it", between, before, after)
	}
	if got := bridgeRules(t, postrouting, n.bridge); len(got) != 1 {
		t.Errorf("nat SHOAL-POSTROUTING has %q for %s, want one masquerade rule", got, n.bridge)
	}

	// DEL leaves the bridge, so its rules stay, also through GC.
	n.mustCNITool(t, "del", a, "eth0", nil)
	n.mustCNITool(t, "del", b, "eth0", nil)
	n.mustCNITool(t, "gc", nil, "eth0", nil)
	if got := bridgeRules(t, forward, n.bridge); len(got) != 4 {
		t.Fatalf("with the bridge still there, SHOAL-FORWARD has %q for it, want its 4 rules", got)
	}

	// Once the bridge is gone, GC removes them.
	if err := netlink.LinkDel(hostLink(t, n.bridge)); err != nil {
		t.Fatal(err)
	}
	n.mustCNITool(t, "gc", nil, "eth0", nil)
	for _, c := range shoalChains {
		if got := bridgeRules(t, c, n.bridge); len(got) != 0 {
			t.Errorf("after GC of the deleted bridge, %s %s still has %q", c.table, c.chain, got)
		}
	}
}

// TestConcurrentAdds starts several first ADDs on a new network at once: all
// must succeed, on one bridge, with each firewall rule present once.
func TestConcurrentAdds(t *testing.T) {
	requireHost(t)
	n := newNetwork(t, networkOptions{ipMasq: true})
	const attachments = 4
	sandboxes := make([]*sandbox, attachments)
	for i := range sandboxes {
		sandboxes[i] = newSandbox(t)
		capArgs := map[string]any{"ips": []string{n.addr(byte(50 + i))}}
		sb := sandboxes[i]
		t.Cleanup(func() {
			if _, err := n.cnitool("del", sb, "eth0", capArgs); err != nil {
				t.Errorf("clean-up DEL: %v", err)
			}
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, attachments)
	for i, sb := range sandboxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = n.cnitool("add", sb, "eth0", map[string]any{"ips": []string{n.addr(byte(50 + i))}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent ADD %d: %v", i, err)
		}
	}
	if got := shoalVethsOn(t, n.bridge); len(got) != attachments {
		t.Errorf("bridge %s has host veths %v, want %d", n.bridge, got, attachments)
	}
	if got := bridgeRules(t, shoalChains[0], n.bridge); len(got) != 4 {
		t.Errorf("SHOAL-FORWARD has %d rules of %s, want 4: %q", len(got), n.bridge, got)
	}
	if got := bridgeRules(t, shoalChains[1], n.bridge); len(got) != 1 {
		t.Errorf("SHOAL-POSTROUTING has %d rules of %s, want 1: %q", len(got), n.bridge, got)
	}
}

func addrOf(t *testing.T, cidr string) netip.Addr {
	t.Helper()
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		t.Fatal(err)
	}
	return p.Addr()
}

// macOf is the MAC shoal-bridge derives from an IPv4 address.
func macOf(t *testing.T, cidr string) string {
	t.Helper()
	a := addrOf(t, cidr).As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}.String()
}

// bridgedTrafficFiltered reports whether br_netfilter hands bridged IPv4
// traffic to iptables, as on this Docker host.
func bridgedTrafficFiltered() bool {
	value, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	return err == nil && strings.TrimSpace(string(value)) == "1"
}

// forwardPolicy returns the policy of the host's filter FORWARD chain.
func forwardPolicy(t *testing.T) string {
	t.Helper()
	rules, err := newIPTables(t).List("filter", "FORWARD")
	if err != nil {
		t.Fatal(err)
	}
	// The first line is "-P FORWARD POLICY".
	if len(rules) > 0 {
		if f := strings.Fields(rules[0]); len(f) == 3 && f[0] == "-P" {
			return f[2]
		}
	}
	return "unknown"
}
