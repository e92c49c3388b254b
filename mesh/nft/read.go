package nft

// This file reads the table from the kernel into a tableModel: its chains with their rules, and
// its sets with their elements, grouped per VIP and per published port. What this package would
// not have made (another chain or set, an element of the wrong size) is listed as foreign.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// readTable reads the Balancer's table through c, and its rules through nl; a missing table
// gives a model that does not exist.
func (b *Balancer) readTable(c *nftables.Conn, nl *netlink.Conn) (*tableModel, error) {
	m := newTableModel()
	t := b.table()
	if _, err := c.ListTableOfFamily(t.Name, t.Family); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return m, nil
		}
		return nil, fmt.Errorf("read table ip %s: %w", t.Name, err)
	}
	m.exists = true
	chains, err := c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return nil, fmt.Errorf("list the chains of table ip %s: %w", t.Name, err)
	}
	rules, err := dumpRules(nl, t)
	if err != nil {
		return nil, err
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != t.Name {
			continue
		}
		readChain(ch, rules[ch.Name], m)
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("list the sets of table ip %s: %w", t.Name, err)
	}
	for _, s := range sets {
		if err := readSet(nl, s, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readChain puts one chain and its rules into m.
func readChain(ch *nftables.Chain, rs []rule, m *tableModel) {
	switch name := ch.Name; {
	case name == chainPrerouting || name == chainOutput || name == chainPostrouting || name == chainInput:
		m.base[name] = baseChain{chain: ch, hook: describeHook(ch), rules: rs}
	case ch.Hooknum != nil:
		m.foreign = append(m.foreign, "base chain "+name)
	default:
		if _, _, ok := parsePickChain(name); ok {
			m.picks[name] = rs
		} else if a, ok := parseVIPChain(name); ok {
			o := m.vip(a)
			o.chain, o.rules = true, rs
		} else if k, ok := parsePortChain(name); ok {
			o := m.port(k)
			o.chain, o.rules = true, rs
		} else {
			m.foreign = append(m.foreign, "chain "+name)
		}
	}
}

// readSet reads one set and its elements into m.
func readSet(nl *netlink.Conn, s *nftables.Set, m *tableModel) error {
	switch s.Name {
	case setVIPs, setVIPAddrs, setVIPBackends, setPorts, setPortBackends, setHairpin:
	default:
		m.foreign = append(m.foreign, "set "+s.Name)
		return nil
	}
	m.sets[s.Name] = describeSet(s)
	elems, err := dumpElements(nl, s.Table, s.Name)
	if err != nil {
		return err
	}
	for _, e := range elems {
		if err := readElement(s.Name, e, m); err != nil {
			m.foreign = append(m.foreign, fmt.Sprintf("element %x of set %s (%v)", e.key, s.Name, err))
		}
	}
	return nil
}

func readElement(set string, e element, m *tableModel) error {
	switch set {
	case setVIPs:
		a, err := parseAddr(e.key)
		if err != nil {
			return err
		}
		v, err := parseVerdict(e.data)
		if err != nil {
			return err
		}
		m.vip(a).verdict = v
	case setVIPAddrs:
		a, err := parseAddr(e.key)
		if err != nil {
			return err
		}
		m.vip(a).listed = true
	case setHairpin:
		if len(e.key) != 8 || string(e.key[:4]) != string(e.key[4:]) {
			return fmt.Errorf("a hairpin key is an address twice, not %x", e.key)
		}
		m.hairpin[addr4Of(string(e.key[:4]))] = 1
	case setVIPBackends:
		prefix, slot, err := parseSlotKey(e.key, 4)
		if err != nil {
			return err
		}
		a, err := parseAddr(prefix)
		if err != nil {
			return err
		}
		if _, err := parseAddr(e.data); err != nil {
			return err
		}
		m.vip(a).backends[slot] = string(e.data)
	case setPorts:
		k, err := parsePortKey(e.key)
		if err != nil {
			return err
		}
		v, err := parseVerdict(e.data)
		if err != nil {
			return err
		}
		m.port(k).verdict = v
	case setPortBackends:
		prefix, slot, err := parseSlotKey(e.key, 8)
		if err != nil {
			return err
		}
		k, err := parsePortKey(prefix)
		if err != nil {
			return err
		}
		if _, err := parseBackend(e.data); err != nil {
			return err
		}
		m.port(k).backends[slot] = string(e.data)
	}
	return nil
}

// parseVerdict describes the verdict of a verdict map element: its data is the nested
// NFTA_VERDICT_CODE and NFTA_VERDICT_CHAIN attributes.
func parseVerdict(b []byte) (string, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", fmt.Errorf("decode verdict: %w", err)
	}
	var (
		code  int32
		chain string
		found bool
	)
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			code = int32(binary.BigEndian.Uint32(ad.Bytes()))
			found = true
		case unix.NFTA_VERDICT_CHAIN:
			chain = ad.String()
		}
	}
	if err := ad.Err(); err != nil {
		return "", fmt.Errorf("decode verdict: %w", err)
	}
	if !found {
		return "", errors.New("element without a verdict")
	}
	return describeVerdict(expr.VerdictKind(code), chain), nil
}
