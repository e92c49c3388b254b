package cnitest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-iptables/iptables"
)

// shoalChain is one of shoal-bridge's chains and the built-in chain that
// jumps to it.
type shoalChain struct{ table, chain, from string }

var shoalChains = []shoalChain{
	{"filter", "SHOAL-FORWARD", "FORWARD"},
	{"nat", "SHOAL-POSTROUTING", "POSTROUTING"},
}

// chainsBefore records which of shoal's chains existed before the tests, so
// that clean-ups remove only the ones the tests created.
var chainsBefore = map[shoalChain]bool{}

func recordChains() error {
	ipt, err := iptables.New()
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	for _, c := range shoalChains {
		exists, err := ipt.ChainExists(c.table, c.chain)
		if err != nil {
			return fmt.Errorf("look up %s %s: %w", c.table, c.chain, err)
		}
		chainsBefore[c] = exists
	}
	return nil
}

func newIPTables(t *testing.T) *iptables.IPTables {
	t.Helper()
	ipt, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	return ipt
}

// bridgeRules lists the rules of bridge in one of shoal's chains, as
// `iptables -S` prints them.
func bridgeRules(t *testing.T, c shoalChain, bridge string) []string {
	t.Helper()
	ipt := newIPTables(t)
	exists, err := ipt.ChainExists(c.table, c.chain)
	if err != nil {
		t.Fatal(err)
	}
	if !exists {
		return nil
	}
	rules, err := ipt.List(c.table, c.chain)
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, r := range rules {
		if strings.Contains(r, `"shoal-bridge:`+bridge+`"`) {
			mine = append(mine, r)
		}
	}
	return mine
}

// rulePackets returns the packet counter of bridge's rule in c that contains
// match (such as "-i BR -o BR").
func rulePackets(t *testing.T, c shoalChain, bridge, match string) int {
	t.Helper()
	rules, err := newIPTables(t).ListWithCounters(c.table, c.chain)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !strings.Contains(r, `"shoal-bridge:`+bridge+`"`) || !strings.Contains(r, match) {
			continue
		}
		// "-A CHAIN ... -c PACKETS BYTES -j TARGET"
		fields := strings.Fields(r)
		for i := 0; i+1 < len(fields); i++ {
			if fields[i] == "-c" {
				packets, err := strconv.Atoi(fields[i+1])
				if err != nil {
					t.Fatalf("counters of %q: %v", r, err)
				}
				return packets
			}
		}
		t.Fatalf("no counters in %q", r)
	}
	t.Fatalf("%s %s has no rule of bridge %s containing %q", c.table, c.chain, bridge, match)
	return 0
}

// removeBridgeRules deletes the rules of bridge from shoal's chains, then the
// chains (and their jumps) that the tests created and nothing uses any more.
func removeBridgeRules(t *testing.T, bridge string) {
	t.Helper()
	ipt := newIPTables(t)
	for _, c := range shoalChains {
		exists, err := ipt.ChainExists(c.table, c.chain)
		if err != nil {
			t.Errorf("look up %s %s: %v", c.table, c.chain, err)
			continue
		}
		if !exists {
			continue
		}
		rules, err := ipt.List(c.table, c.chain)
		if err != nil {
			t.Errorf("list %s %s: %v", c.table, c.chain, err)
			continue
		}
		for n := len(rules) - 1; n >= 1; n-- {
			if strings.Contains(rules[n], `"shoal-bridge:`+bridge+`"`) {
				if err := ipt.DeleteById(c.table, c.chain, n); err != nil {
					t.Errorf("delete %s %s rule %d: %v", c.table, c.chain, n, err)
				}
			}
		}
		if chainsBefore[c] {
			continue
		}
		if rules, err := ipt.List(c.table, c.chain); err != nil || len(rules) > 1 {
			continue // still used, by another test's bridge or an agent
		}
		if err := ipt.DeleteIfExists(c.table, c.from, "-j", c.chain); err != nil {
			t.Errorf("delete the jump from %s %s to %s: %v", c.table, c.from, c.chain, err)
		}
		if err := ipt.DeleteChain(c.table, c.chain); err != nil {
			t.Errorf("delete chain %s %s: %v", c.table, c.chain, err)
		}
	}
}
