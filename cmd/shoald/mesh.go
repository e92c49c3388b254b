package main

// This file owns the node's service mesh setup (docker executor only: the sim's tasks have no
// network namespaces to reach a VIP from): the kernel settings it needs, its load balancer
// (--lb-backend: nftables, or IPVS where the kernel has it) and its embedded DNS server, which the
// dataplane controller programs from the service views the agent receives, and the DNS servers
// the tasks' resolv.conf names.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/shoal/shoal/agent/dataplane"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/backend"
	"github.com/shoal/shoal/mesh/dns"
)

// lbBackends are --lb-backend's values.
var lbBackends = []string{"auto", "nftables", "ipvs"}

// checkLBBackend checks --lb-backend.
func (c *nodeConfig) checkLBBackend() error {
	if c.lbBackend == "" {
		c.lbBackend = "auto"
	}
	for _, b := range lbBackends {
		if c.lbBackend == b {
			return nil
		}
	}
	return fmt.Errorf("--lb-backend: %q is not a load balancer backend (%s)", c.lbBackend, strings.Join(lbBackends, ", "))
}

// meshSysctls are the kernel settings the mesh needs in the node's network namespace: forwarding
// (a VIP's or published port's connection leaves through the bridge it came in on, or toward
// another node), no redirects for it, and bridged IPv4 through netfilter (a backend's reply to a
// client on its own bridge is un-NATed by conntrack).
var meshSysctls = []struct{ path, value string }{
	{"/proc/sys/net/ipv4/ip_forward", "1"},
	{"/proc/sys/net/ipv4/conf/all/send_redirects", "0"},
	{"/proc/sys/net/ipv4/conf/default/send_redirects", "0"},
	{"/proc/sys/net/bridge/bridge-nf-call-iptables", "1"},
}

// prepareMeshKernel applies meshSysctls. A missing br_netfilter is worth a warning, not a
// failure: VIPs still work between nodes, but a client whose backend is on its own node gets
// replies it does not recognise.
func prepareMeshKernel(log *slog.Logger) error {
	for _, s := range meshSysctls {
		err := os.WriteFile(s.path, []byte(s.value), 0o644)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(s.path, "/proc/sys/net/bridge/"):
			log.Warn("the kernel has no br_netfilter (modprobe br_netfilter): replies from a VIP's backend on the client's own node are not translated back", "sysctl", s.path)
		default:
			return fmt.Errorf("set %s to %s: %w", s.path, s.value, err)
		}
	}
	return nil
}

// nodeMesh is the node's load balancer and DNS server.
type nodeMesh struct {
	balancer mesh.Balancer
	dns      *dns.Server
}

// newMesh opens the node's load balancer and DNS server.
func (c *nodeConfig) newMesh(log *slog.Logger) (nodeMesh, error) {
	if err := prepareMeshKernel(log); err != nil {
		return nodeMesh{}, fmt.Errorf("service mesh: %w", err)
	}
	b, err := backend.Open(c.lbBackend, backend.Config{})
	if err != nil {
		return nodeMesh{}, fmt.Errorf("--lb-backend: %w", err)
	}
	upstreams, err := dns.UpstreamsFromResolvConf("/etc/resolv.conf", nil)
	if err != nil {
		log.Warn("read the node's resolvers: names that are not the cluster's will not resolve", "err", err)
	}
	srv, err := dns.New(dns.Config{Upstreams: upstreams, Log: log.With("component", "dns")})
	if err != nil {
		return nodeMesh{}, fmt.Errorf("DNS server: %w", err)
	}
	log.Info("service mesh", "lb_backend", b.Backend(), "dns_upstreams", upstreams)
	return nodeMesh{balancer: b, dns: srv}, nil
}

// nameservers returns the DNS servers a task resolves through: its node's server on the IPv4
// gateway of each network it is attached to.
func nameservers(dp *dataplane.Controller) func(t *api.Task) []netip.Addr {
	return func(t *api.Task) []netip.Addr {
		byID := map[string]*api.Network{}
		for _, n := range dp.Networks() {
			byID[n.GetId()] = n
		}
		var out []netip.Addr
		for _, att := range t.GetNetworks() {
			n, ok := byID[att.GetNetworkId()]
			if !ok {
				continue
			}
			if a := dataplane.DNSAddr(n); a.IsValid() {
				out = append(out, a)
			}
		}
		return out
	}
}

// meshState is the agent's Mesh: the node's mesh as programmed; nil without one.
func (e nodeExecutor) meshState() func(context.Context, *api.DataplaneQuery) (*api.MeshKernelState, *api.DNSAnswer) {
	if e.dp == nil {
		return nil
	}
	return e.dp.MeshKernel
}

// onServices hands the service views of the agent's assignments to the dataplane.
func (e nodeExecutor) onServices(complete bool, set []*api.ServiceView, removed []string) {
	if e.dp != nil {
		e.dp.ApplyServices(complete, set, removed)
	}
}

// endpointGrace is the agent's EndpointGrace: grace for the Docker executor, whose tasks sit
// behind load balancers; none for the sim's, which no load balancer reaches.
func (e nodeExecutor) endpointGrace(grace time.Duration) time.Duration {
	if e.cni == nil {
		return 0
	}
	return grace
}
