package nft

// This file reads the table's rules and set elements with netlink dumps of its own, on a socket
// that receives in 32 KiB buffers:
//   - the library reads the rules of one chain per request, and the table has a chain per VIP;
//     one dump reads them all;
//   - the kernel resumes a set dump by walking the set from its start and skipping what it
//     already sent, and fills each part of a dump up to the largest buffer the reader ever
//     offered. The library's socket offers exactly the size of the last message (a page), so
//     reading 100,000 backends took a second; with 32 KiB parts it takes a fraction.
//
// The rules' expressions are decoded with the library's own decoders (expr.Unmarshal), but
// byteorder, which it cannot decode; an expression kind this package does not know is kept by
// name, so a rule holding one never compares equal to a rule built here. ReadRules offers the
// rule dump to mesh/ipvs.

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// dumpBufferSize is the receive buffer of the dump socket: the largest part the kernel makes.
const dumpBufferSize = 32 << 10

// dialDump opens the dump socket in the calling thread's network namespace.
func dialDump() (*netlink.Conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{MessageBufferSize: dumpBufferSize})
	if err != nil {
		return nil, fmt.Errorf("open a netfilter netlink socket: %w", err)
	}
	return nl, nil
}

// dump sends a dump request of type msgType for table with attrs and returns the replies.
func dump(nl *netlink.Conn, table *nftables.Table, msgType int, attrs []netlink.Attribute) ([]netlink.Message, error) {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return nil, err
	}
	return nl.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msgType),
			Flags: netlink.Request | netlink.Dump,
		},
		// struct nfgenmsg: family, version, resource ID.
		Data: append([]byte{byte(table.Family), unix.NFNETLINK_V0, 0, 0}, data...),
	})
}

// Rule is one rule as ReadRules returns it.
type Rule struct {
	Text    string     // its expressions, as DescribeExprs describes them
	Comment string     // its comment, "" for none
	Exprs   []expr.Any // its expressions, but those of a kind this package does not decode
}

// ReadRules reads every rule of table, in the calling thread's network namespace, with one
// dump, and returns them in order by chain name. mesh/ipvs reads its mark table with it.
func ReadRules(table *nftables.Table) (map[string][]Rule, error) {
	nl, err := dialDump()
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	rules, err := dumpRules(nl, table)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Rule, len(rules))
	for chain, rs := range rules {
		for _, r := range rs {
			out[chain] = append(out[chain], Rule{Text: r.text, Comment: r.comment, Exprs: r.exprs})
		}
	}
	return out, nil
}

// dumpRules returns the rules of every chain of table, in order, by chain name.
func dumpRules(nl *netlink.Conn, table *nftables.Table) (map[string][]rule, error) {
	msgs, err := dump(nl, table, unix.NFT_MSG_GETRULE, []netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(table.Name + "\x00")},
	})
	if err != nil {
		return nil, fmt.Errorf("dump the rules of table ip %s: %w", table.Name, err)
	}
	rules := map[string][]rule{}
	for _, m := range msgs {
		chain, r, err := decodeRule(byte(table.Family), m)
		if err != nil {
			return nil, fmt.Errorf("decode a rule of table ip %s: %w", table.Name, err)
		}
		rules[chain] = append(rules[chain], r)
	}
	return rules, nil
}

// decodeRule decodes one NFT_MSG_NEWRULE message into its chain and rule.
func decodeRule(family byte, m netlink.Message) (string, rule, error) {
	if len(m.Data) < 4 {
		return "", rule{}, fmt.Errorf("message of %d bytes", len(m.Data))
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return "", rule{}, err
	}
	ad.ByteOrder = binary.BigEndian
	var (
		chain string
		r     rule
		parts []string
	)
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_CHAIN:
			chain = ad.String()
		case unix.NFTA_RULE_USERDATA:
			r.comment, _ = userdata.GetString(ad.Bytes(), userdata.TypeComment)
		case unix.NFTA_RULE_EXPRESSIONS:
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					if list.Type() != unix.NFTA_LIST_ELEM {
						continue
					}
					list.Nested(func(one *netlink.AttributeDecoder) error {
						e, part, err := decodeExpr(family, one)
						if e != nil {
							r.exprs = append(r.exprs, e)
						}
						parts = append(parts, "[ "+part+" ]")
						return err
					})
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return "", rule{}, err
	}
	r.text = joinParts(parts)
	return chain, r, nil
}

// decodeExpr decodes one expression: its name, then its data. part describes it as
// describeExpr does; e is nil for a kind this package does not decode.
func decodeExpr(family byte, ad *netlink.AttributeDecoder) (e expr.Any, part string, err error) {
	ad.ByteOrder = binary.BigEndian
	var name string
	var data []byte
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_EXPR_NAME:
			name = ad.String()
		case unix.NFTA_EXPR_DATA:
			data = ad.Bytes()
		}
	}
	if err := ad.Err(); err != nil {
		return nil, "", err
	}
	if name == "byteorder" { // the library does not decode it (v0.3.0)
		bo, err := decodeByteorder(data)
		if err != nil {
			return nil, "", err
		}
		return bo, describeExpr(bo), nil
	}
	e = exprOfName(name)
	if e == nil {
		return nil, "expression " + name, nil
	}
	if err := expr.Unmarshal(family, data, e); err != nil {
		return nil, "", fmt.Errorf("decode a %s expression: %w", name, err)
	}
	// A verdict is an immediate that writes the verdict register.
	if imm, ok := e.(*expr.Immediate); ok && imm.Register == unix.NFT_REG_VERDICT && len(imm.Data) == 0 {
		e = &expr.Verdict{}
		if err := expr.Unmarshal(family, data, e); err != nil {
			return nil, "", fmt.Errorf("decode a verdict: %w", err)
		}
	}
	return e, describeExpr(e), nil
}

func decodeByteorder(data []byte) (*expr.Byteorder, error) {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	var e expr.Byteorder
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_BYTEORDER_SREG:
			e.SourceRegister = ad.Uint32()
		case unix.NFTA_BYTEORDER_DREG:
			e.DestRegister = ad.Uint32()
		case unix.NFTA_BYTEORDER_OP:
			e.Op = expr.ByteorderOp(ad.Uint32())
		case unix.NFTA_BYTEORDER_LEN:
			e.Len = ad.Uint32()
		case unix.NFTA_BYTEORDER_SIZE:
			e.Size = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("decode a byteorder expression: %w", err)
	}
	return &e, nil
}

// exprOfName returns an empty expression of the kind the kernel names; nil for the kinds the
// table never holds.
func exprOfName(name string) expr.Any {
	switch name {
	case "payload":
		return &expr.Payload{}
	case "meta":
		return &expr.Meta{}
	case "cmp":
		return &expr.Cmp{}
	case "bitwise":
		return &expr.Bitwise{}
	case "lookup":
		return &expr.Lookup{}
	case "numgen":
		return &expr.Numgen{}
	case "hash":
		return &expr.Hash{}
	case "nat":
		return &expr.NAT{}
	case "immediate":
		return &expr.Immediate{}
	case "fib":
		return &expr.Fib{}
	case "reject":
		return &expr.Reject{}
	case "ct":
		return &expr.Ct{}
	case "counter":
		return &expr.Counter{}
	case "masq":
		return &expr.Masq{}
	}
	return nil
}

// element is one set element as read: its key and, for a map, its data (for a verdict map, the
// nested verdict attributes).
type element struct {
	key, data []byte
}

// dumpElements returns the elements of set in table.
func dumpElements(nl *netlink.Conn, table *nftables.Table, set string) ([]element, error) {
	msgs, err := dump(nl, table, unix.NFT_MSG_GETSETELEM, []netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(table.Name + "\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(set + "\x00")},
	})
	if err != nil {
		return nil, fmt.Errorf("dump the elements of set %s: %w", set, err)
	}
	var elems []element
	for _, m := range msgs {
		if len(m.Data) < 4 {
			return nil, fmt.Errorf("decode an element of set %s: message of %d bytes", set, len(m.Data))
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				continue
			}
			ad.Nested(func(list *netlink.AttributeDecoder) error {
				for list.Next() {
					list.Nested(func(one *netlink.AttributeDecoder) error {
						e, err := decodeElement(one)
						elems = append(elems, e)
						return err
					})
				}
				return nil
			})
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decode an element of set %s: %w", set, err)
		}
	}
	return elems, nil
}

// decodeElement decodes one NFTA_LIST_ELEM of a set element list.
func decodeElement(ad *netlink.AttributeDecoder) (element, error) {
	var e element
	value := func(nested *netlink.AttributeDecoder) ([]byte, bool) {
		var v []byte
		verdict := false
		for nested.Next() {
			switch nested.Type() {
			case unix.NFTA_DATA_VALUE:
				v = nested.Bytes()
			case unix.NFTA_DATA_VERDICT:
				v, verdict = nested.Bytes(), true
			}
		}
		return v, verdict
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_KEY:
			ad.Nested(func(n *netlink.AttributeDecoder) error {
				e.key, _ = value(n)
				return nil
			})
		case unix.NFTA_SET_ELEM_DATA:
			ad.Nested(func(n *netlink.AttributeDecoder) error {
				e.data, _ = value(n)
				return nil
			})
		}
	}
	return e, ad.Err()
}
