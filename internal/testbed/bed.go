package testbed

// This file owns the Bed type: one underlay namespace holding the bridge, and one namespace
// per node, made when the node is first added and kept until the bed is removed.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"

	nsutil "github.com/containernetworking/plugins/pkg/ns"
)

// Bed is one test bed. Its methods are safe for concurrent use.
type Bed struct {
	name   string       // every namespace of the bed starts with name + "-"
	subnet netip.Prefix // 198.18.B.0/24; node n has 198.18.B.n

	mu      sync.Mutex
	nodes   map[int]bool // nodes whose namespace is plugged in
	removed bool         // Remove ran: no node may be added or changed any more
}

// New creates a bed named name — the prefix of all its namespaces, scheme<pid>-<k> for Sweep to
// recognise it — on subnet, an IPv4 /24 (see PickSubnet): it makes the underlay namespace and
// its bridge. On error it leaves nothing behind.
func New(name string, subnet netip.Prefix) (b *Bed, err error) {
	if name == "" || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("bed %q: the name must be non-empty and hold no '/'", name)
	}
	if !subnet.IsValid() || !subnet.Addr().Is4() || subnet.Bits() != 24 {
		return nil, fmt.Errorf("bed %s: subnet %s is not an IPv4 /24", name, subnet)
	}
	b = &Bed{name: name, subnet: subnet.Masked(), nodes: make(map[int]bool)}
	if err := AddNetns(b.UnderlayNS()); err != nil {
		return nil, fmt.Errorf("bed %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, DeleteNetns(b.UnderlayNS()))
		}
	}()
	if err := addBridge(b.UnderlayNS(), Bridge); err != nil {
		return nil, fmt.Errorf("bed %s: %w", name, err)
	}
	switchOnly(b.UnderlayNS())
	return b, nil
}

// switchOnly makes the bridges of namespace ns forward frames without passing them through
// iptables, as a physical switch would: where br_netfilter is loaded (the Docker engine loads
// it), every new namespace starts with bridge-nf-call-iptables on, and the underlay would pay
// for a firewall and connection tracking no real underlay has. Without br_netfilter there is
// nothing to turn off.
func switchOnly(ns string) {
	for _, key := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"} {
		path := "/proc/sys/net/bridge/" + key
		_ = nsutil.WithNetNSPath(NetnsPath(ns), func(nsutil.NetNS) error {
			return os.WriteFile(path, []byte("0"), 0o644) // the thread's namespace's sysctl
		})
	}
}

// Name is the bed's name, the prefix of its namespaces' names.
func (b *Bed) Name() string { return b.name }

// Subnet is the bed's underlay subnet, 198.18.B.0/24.
func (b *Bed) Subnet() netip.Prefix { return b.subnet }

// UnderlayNS is the name of the namespace that holds the bridge, <name>-ul.
func (b *Bed) UnderlayNS() string { return b.name + "-ul" }

// NodeNS is the name of node n's namespace, <name>-n<n>.
func (b *Bed) NodeNS(n int) string { return fmt.Sprintf("%s-n%d", b.name, n) }

// NodeNSPath is the pin file of node n's namespace, for NsenterArgv, RunIn and Reach.
func (b *Bed) NodeNSPath(n int) string { return NetnsPath(b.NodeNS(n)) }

// port is the name of node n's veth end on the bridge (at most 7 bytes, well within IFNAMSIZ).
func (b *Bed) port(n int) string { return fmt.Sprintf("ul-n%d", n) }

// NodeAddr is node n's underlay address, 198.18.B.n, on its link NodeLink.
func (b *Bed) NodeAddr(n int) netip.Addr {
	a := b.subnet.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// AddNode makes node n (1 to 254)'s namespace and plugs it into the bridge; a node already
// there is left as it is. On error the node's namespace is deleted again.
func (b *Bed) AddNode(n int) (err error) {
	if n < 1 || n > 254 {
		return fmt.Errorf("bed %s: node %d: nodes are numbered 1 to 254", b.name, n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.removed {
		return fmt.Errorf("bed %s: add node %d: the bed is removed", b.name, n)
	}
	if b.nodes[n] {
		return nil
	}
	ns := b.NodeNS(n)
	if err := AddNetns(ns); err != nil {
		return fmt.Errorf("bed %s: node %d: %w", b.name, n, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, DeleteNetns(ns))
		}
	}()
	addr := netip.PrefixFrom(b.NodeAddr(n), b.subnet.Bits())
	if err := plugVeth(b.UnderlayNS(), Bridge, b.port(n), ns, NodeLink, addr); err != nil {
		return fmt.Errorf("bed %s: node %d: %w", b.name, n, err)
	}
	b.nodes[n] = true
	return nil
}

// SetConnected cuts node n off the underlay (its port on the bridge goes down: a partition) or
// connects it again. The node keeps its namespace, links and address either way.
func (b *Bed) SetConnected(n int, connected bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.removed {
		return fmt.Errorf("bed %s: node %d: the bed is removed", b.name, n)
	}
	if !b.nodes[n] {
		return fmt.Errorf("bed %s: node %d has no namespace yet", b.name, n)
	}
	if err := setLinkUp(b.UnderlayNS(), b.port(n), connected); err != nil {
		return fmt.Errorf("bed %s: node %d: %w", b.name, n, err)
	}
	return nil
}

// Namespaces returns the names of the bed's namespaces that exist, the underlay first, then the
// nodes in node order.
func (b *Bed) Namespaces() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, ns := range append([]string{b.UnderlayNS()}, b.nodeNamesLocked()...) {
		if NetnsExists(ns) {
			out = append(out, ns)
		}
	}
	return out
}

// nodeNamesLocked returns the node namespaces' names in node order; b.mu is held.
func (b *Bed) nodeNamesLocked() []string {
	var ns []string
	for _, n := range slices.Sorted(maps.Keys(b.nodes)) {
		ns = append(ns, b.NodeNS(n))
	}
	return ns
}

// Describe returns `ip -br addr` and `ip link` of every namespace of the bed, for a failure
// report. A command that fails has its error in the text; Describe itself never fails.
func (b *Bed) Describe() string {
	var sb strings.Builder
	for _, ns := range b.Namespaces() {
		for _, args := range [][]string{{"-n", ns, "-br", "addr"}, {"-n", ns, "link"}} {
			ctx, cancel := context.WithTimeout(context.Background(), plumbingTimeout)
			out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
			cancel()
			fmt.Fprintf(&sb, "# ip %s\n%s", strings.Join(args, " "), out)
			if err != nil {
				fmt.Fprintf(&sb, "(%v)\n", err)
			}
		}
	}
	return sb.String()
}

// Remove deletes every namespace of the bed, nodes first; with them go every link. Whatever is
// already gone is no error, so Remove may run twice. Processes still running in a node keep
// its namespace alive, unnamed, until they exit: stop them first.
func (b *Bed) Remove() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removed = true
	var errs []error
	for _, ns := range append(b.nodeNamesLocked(), b.UnderlayNS()) {
		errs = append(errs, DeleteNetns(ns))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove bed %s: %w", b.name, err)
	}
	return nil
}
