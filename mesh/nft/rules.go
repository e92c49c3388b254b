package nft

// This file builds the table's rules as netfilter expressions: the rules of the per-VIP and
// per-port chains, of the shared chains that pick a backend, and of the four hooked chains.
// Register use, for reading the expressions below:
// reg 1 (32-bit slots 8, 9, 10, 11) holds a concatenated lookup key; slot 8 (= reg 1) holds the
// address or protocol, slot 9 the port or the backend slot of a VIP, slot 10 the backend slot of
// a port; a lookup writes the backend's address to reg 1 and its port to slot 9. The client's
// source address, hashed for Hash selection, is loaded into reg 2.

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/shoal/shoal/mesh"
	"golang.org/x/sys/unix"
)

const (
	regKey     = unix.NFT_REG_1    // a lookup key and, after the lookup, the backend's address
	regSlot1   = unix.NFT_REG32_01 // second 4-byte field of a key or of a lookup result
	regSlot2   = unix.NFT_REG32_02 // third 4-byte field of a key
	regClient  = unix.NFT_REG_2    // the client's address, for hashing
	hashSeed   = 0x73686f61        // jhash seed, the same on every node and every run
	rtnLocal   = unix.RTN_LOCAL    // fib address type of the node's own addresses
	ipv4Family = unix.NFPROTO_IPV4 // NAT family
	offDaddr   = 16                // IPv4 header offset of the destination address
	offSaddr   = 12                // IPv4 header offset of the source address
	offDport   = 2                 // TCP and UDP header offset of the destination port
	commentTag = "shoal"           // first word of every comment this package writes
	maxComment = 256               // NFT_USERDATA_MAXLEN
	icmpPortUn = 3                 // ICMP code port unreachable
)

// rule is one rule as this package compares them: its expressions described as text, and its
// comment; exprs are the expressions as built or as read.
type rule struct {
	text    string
	comment string
	exprs   []expr.Any
}

func newRule(comment string, exprs ...expr.Any) rule {
	return rule{text: describeExprs(exprs), comment: comment, exprs: exprs}
}

func (r rule) String() string {
	if r.comment == "" {
		return r.text
	}
	return r.text + " comment " + `"` + r.comment + `"`
}

func (r rule) userData() []byte {
	if r.comment == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, r.comment)
}

func rulesEqual(a, b []rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].text != b[i].text || a[i].comment != b[i].comment {
			return false
		}
	}
	return true
}

// labels are the words a comment carries: "shoal vip service=… name=… network=…".
type labels map[string]string

func (l labels) comment(kind string, keys ...string) string {
	var b strings.Builder
	b.WriteString(commentTag + " " + kind)
	for _, k := range keys {
		b.WriteString(" " + k + "=" + l[k])
	}
	return b.String()
}

// parseComment returns the kind and labels of a comment written by labels.comment.
func parseComment(c string) (string, labels, bool) {
	words := strings.Fields(c)
	if len(words) < 2 || words[0] != commentTag {
		return "", nil, false
	}
	l := labels{}
	for _, w := range words[2:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return "", nil, false
		}
		l[k] = v
	}
	return words[1], l, true
}

// rules builds the rules for one configuration.
type rules struct{ cfg Config }

// vip is the rule of a VIP's chain: go to the chain that picks among its backends, or, without
// backends, set the reject mark. The comment keeps the service's labels.
func (r rules) vip(v mesh.VIP) rule {
	comment := labels{"service": v.Service, "name": v.Name, "network": v.Network}.
		comment("vip", "service", "name", "network")
	if len(v.Backends) == 0 {
		return newRule(comment, setMarkBit(r.cfg.RejectMark)...)
	}
	return newRule(comment, &expr.Verdict{Kind: expr.VerdictGoto, Chain: pickChain(pickVIPPrefix, len(v.Backends))})
}

// port is the rule of a published port's chain: for Ingress, set the SNAT mark; then go to the
// chain that picks among its backends, or, without backends, set the reject mark.
func (r rules) port(p mesh.Port) rule {
	comment := labels{"service": p.Service, "name": p.Name, "mode": p.Mode.String()}.
		comment("port", "service", "name", "mode")
	if len(p.Backends) == 0 {
		return newRule(comment, setMarkBit(r.cfg.RejectMark)...)
	}
	var exprs []expr.Any
	if p.Mode == mesh.Ingress {
		exprs = append(exprs, setMarkBit(r.cfg.SNATMark)...)
	}
	exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictGoto, Chain: pickChain(pickPortPrefix, len(p.Backends))})
	return newRule(comment, exprs...)
}

// pickVIP is the rule of the chain shared by the VIPs of n backends: DNAT to the backend of the
// VIP in the slot (0..n-1) the selection picks.
//
// The backends of all VIPs are in one map. Each rule that looks a map up is a binding the
// kernel checks every new element of the map against, so the map is looked up from one rule
// per backend count, not one per VIP: programming 10,000 VIPs of 10 backends from one rule
// each took 10 s of kernel time.
func (r rules) pickVIP(n int) rule {
	exprs := r.slot(uint32(n), regSlot1)
	exprs = append(exprs,
		loadDaddr(regKey),
		&expr.Lookup{SourceRegister: regKey, DestRegister: regKey, IsDestRegSet: true, SetName: setVIPBackends},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: ipv4Family, RegAddrMin: regKey},
	)
	return newRule("", exprs...)
}

// pickPort is the rule of the chain shared by the published ports of n backends: DNAT to the
// backend address and port of the port in the slot the selection picks.
func (r rules) pickPort(n int) rule {
	exprs := r.slot(uint32(n), regSlot2)
	exprs = append(exprs, loadPortKey()...)
	exprs = append(exprs,
		&expr.Lookup{SourceRegister: regKey, DestRegister: regKey, IsDestRegSet: true, SetName: setPortBackends},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: ipv4Family, RegAddrMin: regKey, RegProtoMin: regSlot1},
	)
	return newRule("", exprs...)
}

// pick is the rule of a pick chain named by pickChain.
func (r rules) pick(prefix string, n int) rule {
	if prefix == pickPortPrefix {
		return r.pickPort(n)
	}
	return r.pickVIP(n)
}

// slot writes the backend slot, 0..n-1, to reg: the key field that follows a VIP's address
// (slot 9) or a port's protocol and port (slot 10).
func (r rules) slot(n, reg uint32) []expr.Any {
	if r.cfg.Selection == mesh.Hash {
		return []expr.Any{
			&expr.Payload{DestRegister: regClient, Base: expr.PayloadBaseNetworkHeader, Offset: offSaddr, Len: 4},
			&expr.Hash{SourceRegister: regClient, DestRegister: reg, Length: 4, Modulus: n, Seed: hashSeed, Type: expr.HashTypeJenkins},
		}
	}
	return []expr.Any{&expr.Numgen{Register: reg, Modulus: n, Type: unix.NFT_NG_RANDOM}}
}

// loadDaddr loads the destination address.
func loadDaddr(reg uint32) expr.Any {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offDaddr, Len: 4}
}

// loadPortKey loads the ports map key: the IP protocol to slot 8, the destination port to slot 9.
func loadPortKey() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKey},
		&expr.Payload{DestRegister: regSlot1, Base: expr.PayloadBaseTransportHeader, Offset: offDport, Len: 2},
	}
}

// setMarkBit sets bit in the packet mark, keeping the others: meta mark set mark | bit.
func setMarkBit(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regKey},
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: native32(^bit), Xor: native32(bit)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: regKey},
	}
}

// matchMarkBit matches packets whose mark has bit: meta mark & bit == bit.
func matchMarkBit(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regKey},
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: native32(bit), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: native32(bit)},
	}
}

// ctStateNew matches the first packet of a connection: ct state new.
func ctStateNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: regKey},
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: native32(expr.CtStateBitNEW), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regKey, Data: native32(0)},
	}
}

// clearMarkBit clears bit in the packet mark: meta mark set mark & ~bit.
func clearMarkBit(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: regKey},
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: native32(^bit), Xor: native32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: regKey},
	}
}

func native32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

// dispatch are the rules of the prerouting and output chains: a packet to a VIP goes to the VIP's
// chain; a TCP or UDP packet to a published port on one of the node's own addresses, loopback
// aside, goes to the port's chain. Loopback is left alone: the node's own services listening on
// 127.0.0.1 keep their ports, and a connection from 127.0.0.1 could not leave the node anyway.
func (r rules) dispatch() []rule {
	toPort := []expr.Any{
		&expr.Fib{Register: regKey, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: native32(rtnLocal)},
		loadDaddr(regKey),
		&expr.Bitwise{SourceRegister: regKey, DestRegister: regKey, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: regKey, Data: []byte{127, 0, 0, 0}},
	}
	toPort = append(toPort, loadPortKey()...)
	toPort = append(toPort, &expr.Lookup{SourceRegister: regKey, IsDestRegSet: true, SetName: setPorts})
	return []rule{
		newRule("", loadDaddr(regKey), &expr.Lookup{SourceRegister: regKey, IsDestRegSet: true, SetName: setVIPs}),
		newRule("", toPort...),
	}
}

// output are the rules of the output chain: with an SNAT address, a connection the node's own
// process makes to a VIP is marked for SNAT first; then the rules of dispatch. Such a connection
// leaves with the VIP, or the bridge's gateway, as its source, and every node holds both: a
// backend on another node would answer its own node. From the node's data-path address, the
// answer comes back to this node's conntrack.
func (r rules) output(snat netip.Addr) []rule {
	if !snat.IsValid() {
		return r.dispatch()
	}
	mark := append([]expr.Any{loadDaddr(regKey), &expr.Lookup{SourceRegister: regKey, SetName: setVIPAddrs}},
		setMarkBit(r.cfg.SNATMark)...)
	return append([]rule{newRule("", mark...)}, r.dispatch()...)
}

// snat is the rule of the postrouting chain: a connection an ingress port or the output chain
// marked leaves with the node's SNAT address as source, and the mark bit is cleared.
func (r rules) snat(addr netip.Addr) []rule {
	if !addr.IsValid() {
		return nil
	}
	exprs := matchMarkBit(r.cfg.SNATMark)
	exprs = append(exprs, clearMarkBit(r.cfg.SNATMark)...)
	exprs = append(exprs,
		&expr.Immediate{Register: regKey, Data: addrBytes(addr)},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: ipv4Family, RegAddrMin: regKey},
	)
	return []rule{newRule("", exprs...)}
}

// hairpin is the last rule of the postrouting chain: a connection whose VIP picked the client
// itself leaves masqueraded to the address of the bridge it goes out on (one the SNAT rule took
// before, an ingress connection, already has another source). The task would drop a
// packet from its own address; from the node's, its answer comes back through the node, where
// conntrack undoes both translations.
func (r rules) hairpin() rule {
	return newRule("",
		&expr.Payload{DestRegister: regKey, Base: expr.PayloadBaseNetworkHeader, Offset: offSaddr, Len: 4},
		loadDaddr(regSlot1),
		&expr.Lookup{SourceRegister: regKey, SetName: setHairpin},
		&expr.Masq{},
	)
}

// snatOf returns the address the postrouting rules SNAT to; invalid when there is none.
func snatOf(rs []rule) netip.Addr {
	for _, r := range rs {
		var addr netip.Addr
		for _, e := range r.exprs {
			switch e := e.(type) {
			case *expr.Immediate:
				if len(e.Data) == 4 {
					addr = netip.AddrFrom4([4]byte(e.Data))
				}
			case *expr.NAT:
				if e.Type == expr.NATTypeSourceNAT && addr.IsValid() {
					return addr
				}
			}
		}
	}
	return netip.Addr{}
}

// reject are the rules of the input chain: a new connection that reaches the node's own
// sockets while addressed to a VIP, or marked by a chain without backends, is refused — with a
// TCP reset for TCP, an ICMP port unreachable otherwise. Only new connections: the replies to
// the node's own connections to a VIP (whose source is the VIP until the SNAT, and again once
// the answer is un-NATed) and the resets this chain sends to them are addressed to the VIP too.
func (r rules) reject() []rule {
	toVIP := append(ctStateNew(), loadDaddr(regKey), &expr.Lookup{SourceRegister: regKey, SetName: setVIPAddrs})
	marked := append(ctStateNew(), matchMarkBit(r.cfg.RejectMark)...)
	var out []rule
	for _, match := range [][]expr.Any{toVIP, marked} {
		tcp := append(append([]expr.Any{}, match...),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKey},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regKey, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
		)
		other := append(append([]expr.Any{}, match...),
			&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUn},
		)
		out = append(out, newRule("", tcp...), newRule("", other...))
	}
	return out
}

// baseChain is one of the chains hooked into netfilter, with its rules.
type baseChain struct {
	chain *nftables.Chain
	hook  string // describeHook of the chain
	rules []rule
}

// baseChains are the four hooked chains for SNAT address snat (invalid: no SNAT rule).
func (r rules) baseChains(table *nftables.Table, snat netip.Addr) map[string]baseChain {
	accept := nftables.ChainPolicyAccept
	mk := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority, rs []rule) baseChain {
		c := &nftables.Chain{Name: name, Table: table, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept}
		return baseChain{chain: c, hook: describeHook(c), rules: rs}
	}
	postrouting := append(r.snat(snat), r.hairpin())
	return map[string]baseChain{
		chainPrerouting:  mk(chainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest, r.dispatch()),
		chainOutput:      mk(chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest, r.output(snat)),
		chainPostrouting: mk(chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, postrouting),
		chainInput:       mk(chainInput, nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter, r.reject()),
	}
}
