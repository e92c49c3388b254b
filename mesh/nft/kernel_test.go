package nft

// This file reads a namespace's nftables state straight through the library, independently of
// the code under test (readTable), and makes the hand edits the repair tests undo: through the
// nft binary when it is installed, through the library otherwise.

import (
	"fmt"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/shoal/shoal/mesh"
)

// ruleHandles returns the handles of the rules of every chain of table, by chain.
func ruleHandles(t *testing.T, n ns.NetNS, table string) map[string][]uint64 {
	t.Helper()
	handles := map[string][]uint64{}
	inNetns(t, n, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
		if err != nil {
			return err
		}
		tbl := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
		for _, ch := range chains {
			if ch.Table.Name != table {
				continue
			}
			rules, err := c.GetRules(tbl, ch)
			if err != nil {
				return fmt.Errorf("rules of %s: %w", ch.Name, err)
			}
			handles[ch.Name] = []uint64{}
			for _, r := range rules {
				handles[ch.Name] = append(handles[ch.Name], r.Handle)
			}
		}
		return nil
	})
	return handles
}

// tableExists reports whether table ip <table> exists in n.
func tableExists(t *testing.T, n ns.NetNS, table string) bool {
	t.Helper()
	found := false
	inNetns(t, n, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
		if err != nil {
			return err
		}
		for _, tb := range tables {
			found = found || tb.Name == table
		}
		return nil
	})
	return found
}

// flushRuleset empties every table of n, as `nft flush ruleset` does.
func flushRuleset(t *testing.T, n ns.NetNS) {
	t.Helper()
	if _, ok := nft(t, n, "flush", "ruleset"); ok {
		return
	}
	inNetns(t, n, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		c.FlushRuleset()
		return c.Flush()
	})
}

// replaceRuleWithCounter replaces the rules of chain with a lone counter, by hand.
func replaceRuleWithCounter(t *testing.T, n ns.NetNS, table, chain string) {
	t.Helper()
	if _, ok := nft(t, n, "flush", "chain", "ip", table, chain); ok {
		nft(t, n, "add", "rule", "ip", table, chain, "counter")
		return
	}
	inNetns(t, n, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tbl := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
		ch := &nftables.Chain{Name: chain, Table: tbl}
		c.FlushChain(ch)
		c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: []expr.Any{&expr.Counter{}}})
		return c.Flush()
	})
}

// deletePortBackend deletes the element of slot 1 of tcp/8080 from port-backends, by hand.
func deletePortBackend(t *testing.T, n ns.NetNS, table string) {
	t.Helper()
	if _, ok := nft(t, n, "delete", "element", "ip", table, setPortBackends, "{ tcp . 8080 . 0x00000001 }"); ok {
		return
	}
	editElements(t, n, table, setPortBackends, false, slotBytes(portKeyBytes(portKey{proto: mesh.TCP, port: 8080}), 1))
}

// editElements adds or deletes elements of the set (not a map) or deletes elements of the map
// with the keys, by hand, through the library.
func editElements(t *testing.T, n ns.NetNS, table, set string, add bool, keys ...[]byte) {
	t.Helper()
	inNetns(t, n, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		s := &nftables.Set{Table: &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}, Name: set}
		for _, spec := range setSpecs(s.Table) {
			if spec.Name == set {
				s = spec
			}
		}
		var elems []nftables.SetElement
		for _, k := range keys {
			elems = append(elems, nftables.SetElement{Key: k})
		}
		if add {
			err = c.SetAddElements(s, elems)
		} else {
			err = c.SetDeleteElements(s, elems)
		}
		if err != nil {
			return err
		}
		return c.Flush()
	})
}
