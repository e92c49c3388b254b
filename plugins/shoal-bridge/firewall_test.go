package main

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-iptables/iptables"
)

func TestBridgeOfRule(t *testing.T) {
	tests := map[string]string{
		`-A SHOAL-FORWARD -i br1 -o br1 -m comment --comment "shoal-bridge:br1" -j ACCEPT`:           "br1",
		`-A SHOAL-FORWARD -i br1 -o br1 -m comment --comment shoal-bridge:br1 -j ACCEPT`:             "br1",
		`-A SHOAL-FORWARD -i br1 -o br1 -m comment --comment "shoal-bridge:br1" -c 10 840 -j ACCEPT`: "br1",
		`-A SHOAL-FORWARD -i br1 -o br1 -j ACCEPT`:                                                   "",
		`-A SHOAL-FORWARD -m comment --comment "other:br1" -j ACCEPT`:                                "",
		`-N SHOAL-FORWARD`: "",
	}
	for rule, want := range tests {
		if got := bridgeOfRule(rule); got != want {
			t.Errorf("bridgeOfRule(%q) = %q, want %q", rule, got, want)
		}
	}
}

// TestFirewall programs the rules of two bridges in a throwaway namespace
// next to a Docker-like FORWARD chain: ensuring is idempotent, the jump comes
// first, and GC removes exactly the rules of the bridge that is gone.
func TestFirewall(t *testing.T) {
	inTempNetns(t, func() error {
		fw, err := newFirewall(iptables.ProtocolIPv4)
		if err != nil {
			return err
		}
		ipt := fw.ipt
		// Docker's shape: a DROP policy and its own jump first.
		if err := ipt.ChangePolicy("filter", "FORWARD", "DROP"); err != nil {
			return err
		}
		if err := ipt.NewChain("filter", "DOCKER-USER"); err != nil {
			return err
		}
		if err := ipt.Append("filter", "FORWARD", "-j", "DOCKER-USER"); err != nil {
			return err
		}
		_, subnet1, _ := net.ParseCIDR("198.18.1.0/24")
		_, subnet2, _ := net.ParseCIDR("198.18.2.0/24")
		for range 2 {
			if err := fw.ensureBridgeRules("br1", []*net.IPNet{subnet1, subnet2}); err != nil {
				return err
			}
			if err := fw.ensureBridgeRules("br2", nil); err != nil {
				return err
			}
		}
		// A rule someone else put in shoal's chain is not GC's to remove.
		if err := ipt.Append("filter", forwardChain, "-i", "lo", "-j", "RETURN"); err != nil {
			return err
		}

		forward, err := ipt.List("filter", "FORWARD")
		if err != nil {
			return err
		}
		if want := []string{"-P FORWARD DROP", "-A FORWARD -j SHOAL-FORWARD", "-A FORWARD -j DOCKER-USER"}; !slices.Equal(forward, want) {
			t.Errorf("FORWARD = %q, want %q", forward, want)
		}
		checkChain(t, ipt, "filter", forwardChain, map[string]int{"br1": 4, "br2": 4, "": 1})
		checkChain(t, ipt, "nat", postroutingChain, map[string]int{"br1": 2})
		if err := expectRule(ipt, "nat", postroutingChain, "-s 198.18.2.0/24 ! -o br1"); err != nil {
			t.Error(err)
		}

		exists := map[string]bool{"br1": true}
		removed, err := fw.removeRulesOfGoneBridges(func(br string) (bool, error) { return exists[br], nil })
		if err != nil {
			return err
		}
		if !slices.Equal(removed, []string{"br2"}) {
			t.Errorf("removeRulesOfGoneBridges() removed %q, want br2", removed)
		}
		checkChain(t, ipt, "filter", forwardChain, map[string]int{"br1": 4, "": 1})
		checkChain(t, ipt, "nat", postroutingChain, map[string]int{"br1": 2})

		removed, err = fw.removeRulesOfGoneBridges(func(string) (bool, error) { return false, nil })
		if err != nil {
			return err
		}
		if !slices.Equal(removed, []string{"br1"}) {
			t.Errorf("removeRulesOfGoneBridges() removed %q, want br1 (listed once)", removed)
		}
		checkChain(t, ipt, "filter", forwardChain, map[string]int{"": 1})
		checkChain(t, ipt, "nat", postroutingChain, map[string]int{})
		return nil
	})
}

// checkChain compares the number of rules per bridge ("" for rules of no
// bridge) in a chain.
func checkChain(t *testing.T, ipt *iptables.IPTables, table, chain string, want map[string]int) {
	t.Helper()
	rules, err := ipt.List(table, chain)
	if err != nil {
		t.Errorf("list %s %s: %v", table, chain, err)
		return
	}
	got := map[string]int{}
	for _, r := range rules[1:] {
		got[bridgeOfRule(r)]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s %s has rules per bridge %v, want %v:\n%s", table, chain, got, want, strings.Join(rules, "\n"))
	}
}

func expectRule(ipt *iptables.IPTables, table, chain, fragment string) error {
	rules, err := ipt.List(table, chain)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if strings.Contains(r, fragment) {
			return nil
		}
	}
	return fmt.Errorf("%s %s has no rule containing %q: %q", table, chain, fragment, rules)
}

// The fast path sees the bridge's rules once they are all there, and only then: a missing rule
// sends the ADD to the slow path, which puts it back.
func TestBridgeRulesInPlace(t *testing.T) {
	inTempNetns(t, func() error {
		fw, err := newFirewall(iptables.ProtocolIPv4)
		if err != nil {
			return err
		}
		_, subnet, _ := net.ParseCIDR("198.18.3.0/24")
		masq := []*net.IPNet{subnet}
		if fw.bridgeRulesInPlace("br3", masq) {
			t.Error("rules in place before any was made")
		}
		if err := fw.ensureBridgeRules("br3", masq); err != nil {
			return err
		}
		if !fw.bridgeRulesInPlace("br3", masq) {
			t.Error("rules not seen in place after they were made")
		}
		if fw.bridgeRulesInPlace("br4", nil) {
			t.Error("another bridge's rules seen in place")
		}
		if err := fw.ipt.Delete("nat", postroutingChain, masqueradeRule("br3", subnet)...); err != nil {
			return err
		}
		if fw.bridgeRulesInPlace("br3", masq) {
			t.Error("rules seen in place with the masquerade rule deleted")
		}
		if err := fw.ensureBridgeRules("br3", masq); err != nil {
			return err
		}
		if !fw.bridgeRulesInPlace("br3", masq) {
			t.Error("the slow path did not put the deleted rule back")
		}
		return nil
	})
}
