package ipvs

// This file owns the mark table (nftables, family ip): two maps that give a VIP, or a published
// port on a local address, its firewall mark; the chains that set the mark before IPVS looks at
// the packet, SNAT ingress connections and refuse those without backends; and the writing and
// reading of the table through github.com/google/nftables.
//
//	map vip-marks  ipv4_addr : mark                   (element comments keep the labels;
//	map port-marks inet_proto . inet_service : mark    marks in network order, as nft shows them)
//	chain prerouting, output (filter, mangle)  meta mark set ip daddr map @vip-marks (ntoh)
//	        fib daddr type local ip daddr != 127.0.0.0/8
//	        meta mark set meta l4proto . th dport map @port-marks
//	chain postrouting (nat, srcnat)  meta mark & 0x0f000000 == ingress  snat to State.SNAT
//	chain input (filter)  ct state new, meta mark == RejectMark: reject

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/nft"
	"golang.org/x/sys/unix"
)

const (
	setVIPMarks  = "vip-marks"
	setPortMarks = "port-marks"

	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainInput       = "input"

	regKey   = unix.NFT_REG_1
	regSlot1 = unix.NFT_REG32_01

	elementsPerMessage = 512 // a message's element list is one attribute of at most 64 KiB
)

// markTable is the mark table of one Balancer.
type markTable struct{ table *nftables.Table }

func (b *Balancer) markTable() markTable {
	return markTable{table: &nftables.Table{Name: b.cfg.Table, Family: nftables.TableFamilyIPv4}}
}

func (mt markTable) sets() []*nftables.Set {
	return []*nftables.Set{
		{Table: mt.table, Name: setVIPMarks, IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeMark},
		{Table: mt.table, Name: setPortMarks, IsMap: true, Concatenation: true,
			KeyType:  nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService),
			DataType: nftables.TypeMark},
	}
}

// chain is a hooked chain with its rules.
type chain struct {
	chain *nftables.Chain
	rules [][]expr.Any
}

func (mt markTable) chains(snat netip.Addr) []chain {
	accept := nftables.ChainPolicyAccept
	mk := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority, rules ...[]expr.Any) chain {
		return chain{chain: &nftables.Chain{Name: name, Table: mt.table, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept}, rules: rules}
	}
	daddr := &expr.Payload{DestRegister: regKey, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	// The maps hold marks in network order, which `nft list` shows right (it takes map data
	// without a recorded byte order as network order); the mark is host order.
	toHost := &expr.Byteorder{SourceRegister: regKey, DestRegister: regKey, Op: expr.ByteorderNtoh, Len: 4, Size: 4}
	setMark := &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: regKey}
	markVIP := []expr.Any{daddr,
		&expr.Lookup{SourceRegister: regKey, DestRegister: regKey, IsDestRegSet: true, SetName: setVIPMarks}, toHost, setMark}
	// A published port on the node's own addresses, loopback aside (as in mesh/nft).
	markPort := []expr.Any{
		&expr.Fib{Register: regKey, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: native32(unix.RTN_LOCAL)},
		daddr,
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regKey, Data: []byte{127, 0, 0, 0}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKey},
		&expr.Payload{DestRegister: regSlot1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: regKey, DestRegister: regKey, IsDestRegSet: true, SetName: setPortMarks},
		toHost, setMark,
	}
	var snatRules [][]expr.Any
	if snat.IsValid() {
		a := snat.As4()
		snatRules = append(snatRules, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyMARK, Register: regKey},
			&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: native32(kindMask), Xor: native32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: native32(kindIngress)},
			&expr.Immediate{Register: regKey, Data: a[:]},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: regKey},
		})
	}
	rejected := []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: regKey},
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: native32(expr.CtStateBitNEW), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regKey, Data: native32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regKey},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: native32(RejectMark)},
	}
	rejectTCP := append(append([]expr.Any{}, rejected...),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKey},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	rejectOther := append(append([]expr.Any{}, rejected...),
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}) // port unreachable
	return []chain{
		mk(chainPrerouting, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityMangle, markVIP, markPort),
		mk(chainOutput, nftables.ChainTypeFilter, nftables.ChainHookOutput, nftables.ChainPriorityMangle, markVIP, markPort),
		mk(chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, snatRules...),
		mk(chainInput, nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter, rejectTCP, rejectOther),
	}
}

func native32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

// frame describes the table the chains and sets of mt make for snat.
func (mt markTable) frame(snat netip.Addr) frame {
	f := frame{exists: true, sets: map[string]string{}, chains: map[string]string{}, snat: snat}
	for _, s := range mt.sets() {
		f.sets[s.Name] = describeSet(s)
	}
	for _, c := range mt.chains(snat) {
		texts := make([]string, len(c.rules))
		for i, r := range c.rules {
			texts[i] = nft.DescribeExprs(r)
		}
		f.chains[c.chain.Name] = describeChain(c.chain, texts)
	}
	return f
}

func describeSet(s *nftables.Set) string {
	return fmt.Sprintf("map=%t concatenated=%t key %d bytes", s.IsMap, s.Concatenation, s.KeyType.Bytes)
}

// describeChain describes a chain's hook and its rules (described by nft.DescribeExprs).
func describeChain(c *nftables.Chain, rules []string) string {
	d := "regular"
	if c.Hooknum != nil && c.Priority != nil {
		d = fmt.Sprintf("type %s hook %d priority %d", c.Type, *c.Hooknum, *c.Priority)
	}
	for _, r := range rules {
		d += "; " + r
	}
	return d
}

// Element keys and data.

func vipKey(a netip.Addr) []byte {
	b := a.As4()
	return b[:]
}

// portKeyBytes is protocol, 3 bytes padding, port in network order, 2 bytes padding.
func portKeyBytes(k portKey) []byte {
	b := make([]byte, 8)
	b[0] = unix.IPPROTO_TCP
	if k.proto == mesh.UDP {
		b[0] = unix.IPPROTO_UDP
	}
	binary.BigEndian.PutUint16(b[4:], k.port)
	return b
}

func parsePortKey(b []byte) (portKey, error) {
	if len(b) != 8 {
		return portKey{}, fmt.Errorf("port key of %d bytes", len(b))
	}
	switch b[0] {
	case unix.IPPROTO_TCP:
		return portKey{proto: mesh.TCP, port: binary.BigEndian.Uint16(b[4:])}, nil
	case unix.IPPROTO_UDP:
		return portKey{proto: mesh.UDP, port: binary.BigEndian.Uint16(b[4:])}, nil
	}
	return portKey{}, fmt.Errorf("IP protocol %d", b[0])
}

func markElement(key []byte, e element) nftables.SetElement {
	return nftables.SetElement{Key: key, Val: binary.BigEndian.AppendUint32(nil, e.mark), Comment: e.comment}
}

// tableChanges is one batch of changes to the mark table.
type tableChanges struct {
	rebuild  bool // recreate the table with all of want's elements
	delVIPs  []netip.Addr
	delPorts []portKey
	addVIPs  []netip.Addr // added or replaced, with want's element
	addPorts []portKey
}

func (tc tableChanges) empty() bool {
	return !tc.rebuild && len(tc.delVIPs)+len(tc.delPorts)+len(tc.addVIPs)+len(tc.addPorts) == 0
}

// write sends tc in one batch.
func (mt markTable) write(tc tableChanges, want *model) error {
	if tc.empty() {
		return nil
	}
	elements := len(tc.delVIPs) + len(tc.delPorts) + len(tc.addVIPs) + len(tc.addPorts)
	c, err := nftables.New(nftables.AsLasting(), nftables.WithSockOptions(bufferOption(elements)))
	if err != nil {
		return fmt.Errorf("open an nftables netlink socket: %w", err)
	}
	defer c.CloseLasting()
	sets := mt.sets()
	vipSet, portSet := sets[0], sets[1]
	if tc.rebuild {
		c.AddTable(mt.table) // so that the delete succeeds whether or not the table exists
		c.DelTable(mt.table)
		c.AddTable(mt.table)
		for _, s := range sets {
			if err := c.AddSet(s, nil); err != nil {
				return fmt.Errorf("queue set %s: %w", s.Name, err)
			}
		}
		for _, ch := range mt.chains(want.frame.snat) {
			c.AddChain(ch.chain)
			for _, r := range ch.rules {
				c.AddRule(&nftables.Rule{Table: mt.table, Chain: ch.chain, Exprs: r})
			}
		}
	}
	var del, add [2][]nftables.SetElement
	for _, a := range tc.delVIPs {
		del[0] = append(del[0], nftables.SetElement{Key: vipKey(a)})
	}
	for _, k := range tc.delPorts {
		del[1] = append(del[1], nftables.SetElement{Key: portKeyBytes(k)})
	}
	for _, a := range tc.addVIPs {
		add[0] = append(add[0], markElement(vipKey(a), want.vips[a]))
	}
	for _, k := range tc.addPorts {
		add[1] = append(add[1], markElement(portKeyBytes(k), want.ports[k]))
	}
	for i, s := range []*nftables.Set{vipSet, portSet} {
		for _, chunk := range chunks(del[i]) {
			if err := c.SetDeleteElements(s, chunk); err != nil {
				return fmt.Errorf("queue the deletion of elements of %s: %w", s.Name, err)
			}
		}
	}
	for i, s := range []*nftables.Set{vipSet, portSet} {
		for _, chunk := range chunks(add[i]) {
			if err := c.SetAddElements(s, chunk); err != nil {
				return fmt.Errorf("queue elements of %s: %w", s.Name, err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("change table ip %s: %w", mt.table.Name, err)
	}
	return nil
}

func chunks(elems []nftables.SetElement) [][]nftables.SetElement {
	var out [][]nftables.SetElement
	for len(elems) > 0 {
		n := min(len(elems), elementsPerMessage)
		out, elems = append(out, elems[:n]), elems[n:]
	}
	return out
}

// bufferOption sizes the socket for a batch: the library sends it in one datagram and reads an
// acknowledgement per message (see mesh/nft's conn.go).
func bufferOption(elements int) nftables.SockOption {
	size := 1<<20 + elements*256
	return func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var setErr error
		if err := raw.Control(func(fd uintptr) {
			for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
				if setErr == nil {
					setErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size)
				}
			}
		}); err != nil {
			return err
		}
		return setErr
	}
}

// read reads the mark table into m: its frame and elements.
func (mt markTable) read(m *model) error {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return fmt.Errorf("open an nftables netlink socket: %w", err)
	}
	defer c.CloseLasting()
	if _, err := c.ListTableOfFamily(mt.table.Name, mt.table.Family); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("read table ip %s: %w", mt.table.Name, err)
	}
	m.frame.exists = true
	chains, err := c.ListChainsOfTableFamily(mt.table.Family)
	if err != nil {
		return fmt.Errorf("list the chains of table ip %s: %w", mt.table.Name, err)
	}
	// The library drops the expressions it cannot decode (byteorder among them): the rules are
	// read as mesh/nft reads its own.
	rules, err := nft.ReadRules(mt.table)
	if err != nil {
		return err
	}
	for _, ch := range chains {
		if ch.Table.Name != mt.table.Name {
			continue
		}
		var texts []string
		for _, r := range rules[ch.Name] {
			text := r.Text
			if r.Comment != "" {
				text += ` comment "` + r.Comment + `"` // never made here: differs
			}
			texts = append(texts, text)
			if ch.Name == chainPostrouting {
				m.frame.snat = snatOf(r.Exprs)
			}
		}
		m.frame.chains[ch.Name] = describeChain(ch, texts)
	}
	sets, err := c.GetSets(mt.table)
	if err != nil {
		return fmt.Errorf("list the sets of table ip %s: %w", mt.table.Name, err)
	}
	for _, s := range sets {
		m.frame.sets[s.Name] = describeSet(s)
		if s.Name != setVIPMarks && s.Name != setPortMarks {
			continue
		}
		elems, err := c.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("read the elements of set %s: %w", s.Name, err)
		}
		for _, e := range elems {
			if len(e.Val) != 4 {
				m.frame.sets[s.Name] += fmt.Sprintf(" (element %x without a mark)", e.Key)
				continue
			}
			el := element{mark: binary.BigEndian.Uint32(e.Val), comment: e.Comment}
			if s.Name == setVIPMarks && len(e.Key) == 4 {
				m.vips[netip.AddrFrom4([4]byte(e.Key))] = el
			} else if k, err := parsePortKey(e.Key); s.Name == setPortMarks && err == nil {
				m.ports[k] = el
			} else {
				m.frame.sets[s.Name] += fmt.Sprintf(" (element %x)", e.Key)
			}
		}
	}
	return nil
}

// snatOf returns the address a postrouting rule SNATs to.
func snatOf(exprs []expr.Any) netip.Addr {
	for _, e := range exprs {
		if imm, ok := e.(*expr.Immediate); ok && len(imm.Data) == 4 {
			return netip.AddrFrom4([4]byte(imm.Data))
		}
	}
	return netip.Addr{}
}

// remove deletes the mark table, if it exists.
func (mt markTable) remove() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open an nftables netlink socket: %w", err)
	}
	c.AddTable(mt.table)
	c.DelTable(mt.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete table ip %s: %w", mt.table.Name, err)
	}
	return nil
}
