// This file owns shoal-bridge's iptables rules. They live in shoal's own
// chains, jumped to from the built-in ones, so that Docker's FORWARD DROP
// policy keeps applying to all traffic that is not a shoal bridge's:
//
//	filter SHOAL-FORWARD (from FORWARD, position 1), per bridge BR:
//	  -i BR -o BR                                     ACCEPT  container to container
//	  -o BR -m conntrack --ctstate RELATED,ESTABLISHED ACCEPT  replies into the network
//	  -i BR ! -o BR                                   ACCEPT  out of the network
//	nat SHOAL-POSTROUTING (from POSTROUTING, position 1), per bridge and subnet, with ipMasq:
//	  -s SUBNET ! -o BR                               MASQUERADE
//
// Every rule carries the comment "shoal-bridge:BR", which is how GC finds the
// rules of bridges that no longer exist. Rules stay while their bridge exists;
// the chains and jumps stay for good. Nothing here changes a policy or accepts
// traffic that does not enter or leave a shoal bridge.

package main

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

const (
	forwardChain     = "SHOAL-FORWARD"
	postroutingChain = "SHOAL-POSTROUTING"
	ruleCommentTag   = "shoal-bridge:"
)

// firewall programs one address family's iptables.
type firewall struct {
	ipt *iptables.IPTables
}

// newFirewall fails when the family's iptables binary is missing or unusable.
func newFirewall(proto iptables.Protocol) (*firewall, error) {
	ipt, err := iptables.New(iptables.IPFamily(proto))
	if err != nil {
		return nil, fmt.Errorf("iptables for %s: %w", protoName(proto), err)
	}
	return &firewall{ipt: ipt}, nil
}

// binaryOf is the family's iptables command.
func binaryOf(proto iptables.Protocol) string {
	if proto == iptables.ProtocolIPv6 {
		return "ip6tables"
	}
	return "iptables"
}

func protoName(proto iptables.Protocol) string {
	if proto == iptables.ProtocolIPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// protoOf returns the iptables family of an address.
func protoOf(ip net.IP) iptables.Protocol {
	if ip.To4() != nil {
		return iptables.ProtocolIPv4
	}
	return iptables.ProtocolIPv6
}

// ensureBridgeRules adds the bridge's forwarding rules and, for each subnet in
// masq, its masquerade rule; rules already present are left alone.
func (f *firewall) ensureBridgeRules(bridge string, masq []*net.IPNet) error {
	if f.bridgeRulesInPlace(bridge, masq) {
		return nil
	}
	if err := f.ensureChain("filter", forwardChain, "FORWARD"); err != nil {
		return err
	}
	for _, rule := range forwardRules(bridge) {
		if err := f.ipt.AppendUnique("filter", forwardChain, rule...); err != nil {
			return fmt.Errorf("add filter %s rule %q: %w", forwardChain, strings.Join(rule, " "), err)
		}
	}
	if len(masq) == 0 {
		return nil
	}
	if err := f.ensureChain("nat", postroutingChain, "POSTROUTING"); err != nil {
		return err
	}
	for _, subnet := range masq {
		rule := masqueradeRule(bridge, subnet)
		if err := f.ipt.AppendUnique("nat", postroutingChain, rule...); err != nil {
			return fmt.Errorf("add nat %s rule %q: %w", postroutingChain, strings.Join(rule, " "), err)
		}
	}
	return nil
}

// bridgeRulesInPlace reports whether the jumps to shoal's chains and every rule of the bridge are
// there, from one listing of each table (`iptables -S`): the common case of an ADD on a network
// that has tasks on this node already, which then costs two iptables runs instead of about eight
// checks. Any doubt (a listing that fails, a rule written differently) answers false, and the
// caller makes sure of each rule.
func (f *firewall) bridgeRulesInPlace(bridge string, masq []*net.IPNet) bool {
	want := map[string][]string{"filter": {"-A FORWARD -j " + forwardChain}}
	for _, rule := range forwardRules(bridge) {
		want["filter"] = append(want["filter"], "-A "+forwardChain+" "+strings.Join(rule, " "))
	}
	if len(masq) > 0 {
		want["nat"] = []string{"-A POSTROUTING -j " + postroutingChain}
		for _, subnet := range masq {
			want["nat"] = append(want["nat"], "-A "+postroutingChain+" "+strings.Join(masqueradeRule(bridge, subnet), " "))
		}
	}
	for table, rules := range want {
		out, err := exec.Command(binaryOf(f.ipt.Proto()), "-w", "-t", table, "-S").Output()
		if err != nil {
			return false
		}
		listed := make(map[string]bool)
		for _, line := range strings.Split(string(out), "\n") {
			listed[strings.ReplaceAll(strings.TrimSpace(line), `"`, "")] = true
		}
		for _, r := range rules {
			if !listed[r] {
				return false
			}
		}
	}
	return true
}

// ensureChain creates chain in table if needed and makes sure the built-in
// chain from jumps to it. A missing jump is inserted at position 1; one that
// exists stays where it is, so a reordering by another tool (Docker puts its
// DOCKER-USER jump first) is not fought over.
func (f *firewall) ensureChain(table, chain, from string) error {
	exists, err := f.ipt.ChainExists(table, chain)
	if err != nil {
		return fmt.Errorf("look up %s chain %s: %w", table, chain, err)
	}
	if !exists {
		if err := f.ipt.NewChain(table, chain); err != nil && !isExists(err) {
			return fmt.Errorf("create %s chain %s: %w", table, chain, err)
		}
	}
	jumps, err := f.ipt.Exists(table, from, "-j", chain)
	if err != nil {
		return fmt.Errorf("look up the jump from %s %s to %s: %w", table, from, chain, err)
	}
	if !jumps {
		if err := f.ipt.Insert(table, from, 1, "-j", chain); err != nil {
			return fmt.Errorf("insert the jump from %s %s to %s: %w", table, from, chain, err)
		}
	}
	return nil
}

// removeRulesOfGoneBridges deletes, from both of shoal's chains, the rules of
// every bridge for which exists says false. It returns the bridges whose
// rules it deleted.
func (f *firewall) removeRulesOfGoneBridges(exists func(bridge string) (bool, error)) ([]string, error) {
	var removed []string
	for _, tc := range [][2]string{{"filter", forwardChain}, {"nat", postroutingChain}} {
		table, chain := tc[0], tc[1]
		present, err := f.ipt.ChainExists(table, chain)
		if err != nil {
			return removed, fmt.Errorf("look up %s chain %s: %w", table, chain, err)
		}
		if !present {
			continue
		}
		rules, err := f.ipt.List(table, chain)
		if err != nil {
			return removed, fmt.Errorf("list %s chain %s: %w", table, chain, err)
		}
		// rules[0] is "-N CHAIN"; rule number n is rules[n]. Deleting from
		// the end keeps the numbers of the rules before it.
		for n := len(rules) - 1; n >= 1; n-- {
			bridge := bridgeOfRule(rules[n])
			if bridge == "" {
				continue
			}
			ok, err := exists(bridge)
			if err != nil {
				return removed, err
			}
			if ok {
				continue
			}
			if err := f.ipt.DeleteById(table, chain, n); err != nil {
				return removed, fmt.Errorf("delete %s %s rule %d (%s): %w", table, chain, n, rules[n], err)
			}
			if len(removed) == 0 || removed[len(removed)-1] != bridge {
				removed = append(removed, bridge)
			}
		}
	}
	return removed, nil
}

// forwardRules are the bridge's rules in SHOAL-FORWARD.
func forwardRules(bridge string) [][]string {
	accept := slices.Concat(commentArgs(bridge), []string{"-j", "ACCEPT"})
	return [][]string{
		slices.Concat([]string{"-i", bridge, "-o", bridge}, accept),
		slices.Concat([]string{"-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"}, accept),
		// A published port's new connection, DNATed by the node's load balancer to a task here:
		// where the node's FORWARD policy is DROP (Docker sets it), nothing else lets it in.
		slices.Concat([]string{"-o", bridge, "-m", "conntrack", "--ctstate", "DNAT"}, accept),
		slices.Concat([]string{"-i", bridge, "!", "-o", bridge}, accept),
	}
}

// masqueradeRule is the bridge's rule in SHOAL-POSTROUTING for one subnet.
func masqueradeRule(bridge string, subnet *net.IPNet) []string {
	return slices.Concat([]string{"-s", subnet.String(), "!", "-o", bridge}, commentArgs(bridge), []string{"-j", "MASQUERADE"})
}

func commentArgs(bridge string) []string {
	return []string{"-m", "comment", "--comment", ruleCommentTag + bridge}
}

// ruleComment matches the tag in `iptables -S` output, quoted or not.
var ruleComment = regexp.MustCompile(`--comment "?` + regexp.QuoteMeta(ruleCommentTag) + `([^"\s]+)"?`)

// bridgeOfRule returns the bridge a listed rule belongs to, or "" for a rule
// without shoal-bridge's comment.
func bridgeOfRule(rule string) string {
	m := ruleComment.FindStringSubmatch(rule)
	if m == nil {
		return ""
	}
	return m[1]
}

// isExists reports whether an iptables error says the chain already exists,
// which happens when something else created it between the check and the
// creation.
func isExists(err error) bool {
	var ipterr *iptables.Error
	return errors.As(err, &ipterr) && ipterr.ExitStatus() == 1 && strings.Contains(ipterr.Error(), "exists")
}
