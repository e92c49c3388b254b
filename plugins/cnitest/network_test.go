package cnitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// network is a test network: a conflist in its own NETCONFPATH whose first
// plugin is shoal-bridge with shoal-ipam, on a bridge and a /24 of
// 198.18.0.0/15 no other interface of the host uses.
type network struct {
	name    string
	version string
	bridge  string
	subnet  netip.Prefix
	gateway netip.Addr
	confDir string
}

// networkOptions vary a test network.
type networkOptions struct {
	version string           // cniVersion; "" means 1.1.0
	ipMasq  bool             // shoal-bridge's ipMasq
	mtu     int              // shoal-bridge's mtu; 0 leaves the default
	chained []map[string]any // plugins after shoal-bridge
}

// newNetwork writes the network's conflist. When the test ends its bridge and
// its firewall rules are removed.
func newNetwork(t *testing.T, opts networkOptions) *network {
	t.Helper()
	suffix := randomHex(t, 4)
	n := &network{
		name:    "shoal-t-" + suffix,
		version: opts.version,
		bridge:  "shlt" + suffix,
		subnet:  freeSubnet(t),
		confDir: t.TempDir(),
	}
	if n.version == "" {
		n.version = "1.1.0"
	}
	n.gateway = n.subnet.Addr().Next()
	plugins := append([]map[string]any{n.bridgePlugin(opts)}, opts.chained...)
	conflist, err := json.Marshal(map[string]any{"cniVersion": n.version, "name": n.name, "plugins": plugins})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.confDir, n.name+".conflist"), conflist, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if link, err := netlinksafe.LinkByName(n.bridge); err == nil {
			if err := netlink.LinkDel(link); err != nil {
				t.Errorf("delete bridge %s: %v", n.bridge, err)
			}
		}
		removeBridgeRules(t, n.bridge)
	})
	return n
}

func (n *network) bridgePlugin(opts networkOptions) map[string]any {
	p := map[string]any{
		"type":         "shoal-bridge",
		"bridge":       n.bridge,
		"ipMasq":       opts.ipMasq,
		"capabilities": map[string]bool{"ips": true, "mac": true},
		"ipam": map[string]any{
			"type":    "shoal-ipam",
			"subnets": []map[string]string{{"subnet": n.subnet.String(), "gateway": n.gateway.String()}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
		},
	}
	if opts.mtu != 0 {
		p["mtu"] = opts.mtu
	}
	return p
}

// pluginConf is shoal-bridge's configuration as a runtime passes it to the
// plugin, for tests that run the plugin without cnitool.
func (n *network) pluginConf(t *testing.T, extra map[string]any) []byte {
	t.Helper()
	p := n.bridgePlugin(networkOptions{})
	p["name"] = n.name
	p["cniVersion"] = n.version
	for k, v := range extra {
		p[k] = v
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addr returns the subnet's address number host, with the prefix length.
func (n *network) addr(host byte) string {
	a := n.subnet.Addr().As4()
	a[3] = host
	return netip.PrefixFrom(netip.AddrFrom4(a), n.subnet.Bits()).String()
}

// gatewayCIDR is the gateway with the subnet's prefix length, as the bridge
// holds it.
func (n *network) gatewayCIDR() string {
	return netip.PrefixFrom(n.gateway, n.subnet.Bits()).String()
}

// cnitool runs `cnitool command` for the network and sb, with the runtime's
// capability arguments. It returns cnitool's stdout, and on failure an error
// holding its stderr.
func (n *network) cnitool(command string, sb *sandbox, ifName string, capArgs map[string]any, extraEnv ...string) (string, error) {
	nsPath := "/run/netns/none" // GC and STATUS concern no namespace
	if sb != nil {
		nsPath = sb.path
	}
	cmd := exec.Command(filepath.Join(cniPath, "cnitool"), command, n.name, nsPath)
	cmd.Env = append(os.Environ(), "NETCONFPATH="+n.confDir, "CNI_PATH="+cniPath, "CNI_IFNAME="+ifName)
	if capArgs != nil {
		b, err := json.Marshal(capArgs)
		if err != nil {
			return "", err
		}
		cmd.Env = append(cmd.Env, "CAP_ARGS="+string(b))
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("cnitool %s %s: %w: %s", command, n.name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// add attaches sb to the network as ifName and returns the result, converted
// from the network's version; the test fails if ADD does. A DEL runs when the
// test ends, which also clears cnitool's cache.
func (n *network) add(t *testing.T, sb *sandbox, ifName string, capArgs map[string]any) *current.Result {
	t.Helper()
	res, err := n.tryAdd(t, sb, ifName, capArgs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tryAdd is add returning ADD's error.
func (n *network) tryAdd(t *testing.T, sb *sandbox, ifName string, capArgs map[string]any) (*current.Result, error) {
	t.Helper()
	t.Cleanup(func() {
		if _, err := n.cnitool("del", sb, ifName, capArgs); err != nil {
			t.Errorf("clean-up DEL: %v", err)
		}
	})
	out, err := n.cnitool("add", sb, ifName, capArgs)
	if err != nil {
		return nil, err
	}
	res, err := create.CreateFromBytes([]byte(out))
	if err != nil {
		return nil, fmt.Errorf("decode ADD result %s: %w", out, err)
	}
	if res.Version() != n.version {
		return nil, fmt.Errorf("ADD result has version %s, want the configuration's %s", res.Version(), n.version)
	}
	return current.NewResultFromResult(res)
}

// mustCNITool runs cnitool and fails the test if it fails.
func (n *network) mustCNITool(t *testing.T, command string, sb *sandbox, ifName string, capArgs map[string]any) {
	t.Helper()
	if _, err := n.cnitool(command, sb, ifName, capArgs); err != nil {
		t.Fatal(err)
	}
}

// freeSubnet picks a random /24 of 198.18.0.0/15 that no route or address of
// the host overlaps, so that parallel test runs and other tests using the
// range do not collide.
func freeSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	routes, err := netlinksafe.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlinksafe.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var used []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if p, ok := prefixOf(r.Dst.IP, r.Dst.Mask); ok && p.Bits() > 0 {
			used = append(used, p)
		}
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IP, a.Mask); ok {
			used = append(used, p)
		}
	}
	for range 100 {
		n := rand.IntN(512)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n/256), byte(n % 256), 0}), 24)
		free := true
		for _, u := range used {
			if u.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p
		}
	}
	t.Fatal("no free /24 in 198.18.0.0/15")
	return netip.Prefix{}
}

func prefixOf(ip []byte, mask []byte) (netip.Prefix, bool) {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	ones := 0
	for _, b := range mask {
		for ; b != 0; b <<= 1 {
			ones++
		}
	}
	return netip.PrefixFrom(addr.Unmap(), ones).Masked(), true
}
