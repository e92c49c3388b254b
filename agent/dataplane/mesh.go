package dataplane

// This file owns the programming of the node's service mesh from the controller's views: the
// bridges ingress needs, the VIP addresses on the bridges, the load balancer and the DNS server.
// A change of one service's view or endpoints marks that service dirty, and the next pass
// programs it alone (meshupdate.go): one endpoint change costs one service's rules and records,
// however many services there are. A complete view, a network's change, a new bridge, a failure
// and the repair pass program the whole mesh, each part diffing against what it holds; the
// repair pass reads the kernel back (mesh.Balancer.Repair) and puts right what was changed
// behind its back.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/dns"
	"github.com/shoal/shoal/mesh/vipaddr"
	"github.com/shoal/shoal/overlay"
)

// DNSServer is what the controller needs of the node's embedded DNS server (dns.Server).
type DNSServer interface {
	Sync(zones []dns.Zone) error
	Update(network string, set []dns.Service, removed []string) error
	Lookup(network, name string, qtype uint16) (dns.Answer, error)
	Records() map[string]map[string][]netip.Addr
	Listening() []netip.AddrPort
	Broken() bool
	SetClients(clients map[netip.Addr][]string)
}

// Bridges is what the controller needs of the node's bridges: whether one exists, making one a
// network needs without a local task, and the VIP addresses on it.
type Bridges interface {
	Exists(name string) bool
	Ensure(name string, mtu int, gateways []netip.Prefix) error
	SyncVIPs(name string, vips []netip.Addr) (vipaddr.Changes, error)
	ReadVIPs(name string) ([]netip.Addr, error)
}

// ApplyServices applies an assignments message's service views: with complete, set is every
// service; otherwise set and removed (IDs) are changes.
func (c *Controller) ApplyServices(complete bool, set []*api.ServiceView, removed []string) {
	c.mu.Lock()
	if complete {
		clear(c.services)
		c.haveServices = true
	}
	if complete {
		c.meshDirty = true
	}
	for _, id := range removed {
		delete(c.services, id)
		c.dirtyServices[id] = true
	}
	for _, s := range set {
		c.services[s.GetId()] = s
		c.dirtyServices[s.GetId()] = true
	}
	c.mu.Unlock()
	c.kick()
}

// meshEnabled says whether the node runs a mesh at all.
func (c *Controller) meshEnabled() bool { return c.cfg.Balancer != nil && c.cfg.Bridges != nil }

// meshFullLocked says whether the next pass programs the whole mesh rather than the changed
// services alone; c.mu is held.
func (c *Controller) meshFullLocked() bool {
	return c.meshDirty || c.repairMesh || c.programmed == nil
}

// ensureIngressBridgesLocked makes the bridge of every network an ingress port of the services
// the next pass programs needs, so that the overlay can connect it and the node reach the port's
// backends; c.mu is held. A bridge it makes has the whole mesh programmed (its VIP addresses,
// its DNS listener).
func (c *Controller) ensureIngressBridgesLocked() {
	if !c.meshEnabled() || !c.haveServices {
		return
	}
	services := c.dirtyServiceListLocked()
	if c.meshFullLocked() {
		services = c.serviceListLocked()
	}
	for _, id := range IngressNetworks(services) {
		n, ok := c.networks[id]
		if !ok {
			continue
		}
		name := cni.BridgeName(id)
		if c.cfg.Bridges.Exists(name) {
			continue
		}
		gws, err := cni.Gateways(n)
		if err == nil {
			err = c.cfg.Bridges.Ensure(name, c.cfg.MTU, gws)
		}
		if err != nil {
			c.cfg.Log.Warn("make the bridge of a network with an ingress port", "network", id, "err", err)
			continue
		}
		c.cfg.Log.Info("made the bridge of a network for its ingress ports", "network", id, "bridge", name)
		c.dirty[id] = true
		c.meshDirty = true
	}
}

// newBridgeLocked says whether one of the networks has a bridge that the last programming of
// the whole mesh did not see; c.mu is held.
func (c *Controller) newBridgeLocked(networkIDs []string) bool {
	if !c.meshEnabled() || c.programmed == nil {
		return false // the next pass programs the whole mesh anyway
	}
	for _, id := range networkIDs {
		if !c.programmed.bridges[id] && c.cfg.Bridges.Exists(cni.BridgeName(id)) {
			return true
		}
	}
	return false
}

// syncMeshLocked programs what changed of the mesh: the whole of it when it is dirty, with
// repair (reading the kernel back and repairing it) or when nothing is recorded of it, else the
// services whose views or endpoints changed, falling back to the whole when that fails; c.mu is
// held.
func (c *Controller) syncMeshLocked(repair bool) {
	if !c.meshEnabled() {
		clear(c.dirtyServices) // nothing to program them into
		return
	}
	if !c.haveServices {
		return
	}
	full := repair || c.meshFullLocked()
	if !full {
		if len(c.dirtyServices) == 0 {
			return
		}
		err := c.programServicesLocked()
		if err == nil {
			clear(c.dirtyServices)
			return
		}
		c.cfg.Log.Info("program the changed services alone; programming the whole mesh", "services", len(c.dirtyServices), "err", err)
	}
	c.meshDirty = false
	clear(c.dirtyServices)
	rec, err := c.programMeshLocked(repair)
	c.programmed = rec
	if err != nil {
		c.cfg.Log.Warn("program the service mesh", "err", err)
		c.meshDirty = true // retried by the repair pass
	}
}

// programMeshLocked programs the whole mesh, each part diffing against what it holds, and returns
// the record of it (nil with an error: the next pass programs the whole mesh again).
func (c *Controller) programMeshLocked(repair bool) (*meshRecord, error) {
	services := c.serviceListLocked()
	eps := c.endpointListLocked()
	var errs []error
	vips := BridgeVIPs(services)
	for id := range c.networks {
		ch, err := c.cfg.Bridges.SyncVIPs(cni.BridgeName(id), vips[id])
		if errors.Is(err, vipaddr.ErrNoBridge) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", id, err))
		} else if ch != (vipaddr.Changes{}) {
			c.cfg.Log.Debug("VIP addresses programmed", "network", id, "added", ch.Added, "removed", ch.Removed)
		}
	}
	st := MeshState(MeshView{Services: services, Endpoints: eps, LocalVTEP: c.cfg.LocalVTEP})
	sync := c.cfg.Balancer.Sync
	if repair {
		sync = c.cfg.Balancer.Repair
	}
	ch, err := sync(st)
	if err != nil {
		errs = append(errs, fmt.Errorf("load balancer: %w", err))
	} else if ch != (mesh.Changes{}) {
		c.cfg.Log.Debug("load balancer programmed", "added", ch.Added, "updated", ch.Updated, "removed", ch.Removed, "rebuilt", ch.Rebuilt, "repair", repair)
	}
	if c.cfg.DNS != nil {
		if err := c.cfg.DNS.Sync(c.dnsZonesLocked(services, eps)); err != nil {
			errs = append(errs, fmt.Errorf("DNS: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c.recordMeshLocked(st, services), nil
}

// setDNSClientsLocked tells the DNS server, when they changed, the other networks of each local
// task on several networks, by the task's address on each; c.mu is held. Its cost follows the
// node's own tasks.
func (c *Controller) setDNSClientsLocked() {
	if !c.clientsDirty || c.cfg.DNS == nil || !c.meshEnabled() {
		return
	}
	c.clientsDirty = false
	c.cfg.DNS.SetClients(DNSClients(c.localTasks))
}

// DNSClients maps the address of each task on several networks, on each of them, to the IDs of
// its other networks (sorted): tasks maps task ID → network ID → the task's address there.
func DNSClients(tasks map[string]map[string]netip.Addr) map[netip.Addr][]string {
	out := map[netip.Addr][]string{}
	for _, byNetwork := range tasks {
		if len(byNetwork) < 2 {
			continue
		}
		networks := slices.Sorted(maps.Keys(byNetwork))
		for _, id := range networks {
			out[byNetwork[id]] = slices.DeleteFunc(slices.Clone(networks), func(other string) bool { return other == id })
		}
	}
	return out
}

// dnsZonesLocked are the DNS zones of the known networks; c.mu is held.
func (c *Controller) dnsZonesLocked(services []*api.ServiceView, eps []*api.Endpoint) []dns.Zone {
	nets := make([]*api.Network, 0, len(c.networks))
	for _, n := range c.networks {
		nets = append(nets, n)
	}
	return DNSZones(nets, services, eps, c.listenAddrLocked)
}

// listenAddrLocked is where the DNS server listens for network id's containers: its IPv4 gateway,
// when the node has its bridge; c.mu is held.
func (c *Controller) listenAddrLocked(id string) netip.Addr {
	n, ok := c.networks[id]
	if !ok || !c.cfg.Bridges.Exists(cni.BridgeName(id)) {
		return netip.Addr{}
	}
	return DNSAddr(n)
}

func (c *Controller) serviceListLocked() []*api.ServiceView {
	out := make([]*api.ServiceView, 0, len(c.services))
	for _, s := range c.services {
		out = append(out, s)
	}
	return out
}

func (c *Controller) endpointListLocked() []*api.Endpoint {
	var out []*api.Endpoint
	for _, m := range c.endpoints {
		for _, ep := range m {
			out = append(out, ep)
		}
	}
	return out
}

// MeshKernel reports the node's mesh as programmed (for a manager's dataplane query): the load
// balancer's state read back from the kernel, the DNS server's records and listeners, and the
// answer to the DNS lookup the query asks for.
func (c *Controller) MeshKernel(_ context.Context, q *api.DataplaneQuery) (*api.MeshKernelState, *api.DNSAnswer) {
	if !c.meshEnabled() {
		return &api.MeshKernelState{Error: "this node runs no service mesh"}, nil
	}
	out := &api.MeshKernelState{Backend: c.cfg.Balancer.Backend()}
	var errs []error
	if st, err := c.cfg.Balancer.Read(); err != nil {
		errs = append(errs, fmt.Errorf("read the load balancer: %w", err))
	} else {
		out.Vips, out.Ports = kernelMesh(st)
	}
	c.mu.Lock()
	desired, haveView := MeshState(MeshView{Services: c.serviceListLocked(), Endpoints: c.endpointListLocked(), LocalVTEP: c.cfg.LocalVTEP}), c.haveServices
	c.mu.Unlock()
	if haveView {
		diffs, err := c.cfg.Balancer.Inspect(desired)
		if err != nil {
			errs = append(errs, fmt.Errorf("inspect the load balancer: %w", err))
		}
		for _, d := range diffs {
			out.LbDifferences = append(out.LbDifferences, d.String())
		}
	}
	if c.cfg.DNS != nil {
		for network, names := range c.cfg.DNS.Records() {
			for _, name := range slices.Sorted(maps.Keys(names)) {
				r := &api.DNSRecord{NetworkId: network, Name: name}
				for _, a := range names[name] {
					r.Addrs = append(r.Addrs, a.String())
				}
				out.DnsRecords = append(out.DnsRecords, r)
			}
		}
		slices.SortFunc(out.DnsRecords, func(a, b *api.DNSRecord) int {
			return strings.Compare(a.NetworkId+" "+a.Name, b.NetworkId+" "+b.Name)
		})
		for _, l := range c.cfg.DNS.Listening() {
			out.DnsListening = append(out.DnsListening, l.String())
		}
	}
	if err := errors.Join(errs...); err != nil {
		out.Error = err.Error()
	}
	var answer *api.DNSAnswer
	if q.GetDnsName() != "" {
		answer = c.lookup(q.GetDnsNetwork(), q.GetDnsName())
	}
	return out, answer
}

// lookup answers name on network as the DNS server would a container there.
func (c *Controller) lookup(network, name string) *api.DNSAnswer {
	a := &api.DNSAnswer{Name: name, NetworkId: network}
	if c.cfg.DNS == nil {
		a.Error = "this node runs no DNS server"
		return a
	}
	ans, err := c.cfg.DNS.Lookup(network, name, mdns.TypeA)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	for _, addr := range ans.Addrs {
		a.Addrs = append(a.Addrs, addr.String())
	}
	a.Rcode = mdns.RcodeToString[ans.Rcode]
	a.Forwarded = ans.Forwarded
	return a
}

// kernelMesh is a load balancer state on the wire.
func kernelMesh(st mesh.State) ([]*api.VIPKernelState, []*api.PortKernelState) {
	var vips []*api.VIPKernelState
	for _, v := range st.VIPs {
		k := &api.VIPKernelState{ServiceId: v.Service, NetworkId: v.Network, Vip: v.Addr.String()}
		for _, b := range v.Backends {
			k.Backends = append(k.Backends, b.String())
		}
		vips = append(vips, k)
	}
	var ports []*api.PortKernelState
	for _, p := range st.Ports {
		k := &api.PortKernelState{ServiceId: p.Service, Protocol: p.Protocol.String(), PublishedPort: uint32(p.Published), Mode: p.Mode.String()}
		for _, b := range p.Backends {
			k.Backends = append(k.Backends, netip.AddrPortFrom(b.Addr, b.Port).String())
		}
		ports = append(ports, k)
	}
	return vips, ports
}

// NodeBridges returns the node's real bridges: overlay.EnsureBridge makes them, mesh/vipaddr keeps
// their VIP addresses.
func NodeBridges() Bridges { return nodeBridges{} }

type nodeBridges struct{}

func (nodeBridges) Exists(name string) bool {
	_, err := vipaddr.Read(name)
	return err == nil
}

func (nodeBridges) Ensure(name string, mtu int, gateways []netip.Prefix) error {
	br, err := overlay.EnsureBridge(name, mtu)
	if err != nil {
		return err
	}
	return overlay.EnsureGatewayAddrs(br, prefixesToIPNets(gateways))
}

func (nodeBridges) SyncVIPs(name string, vips []netip.Addr) (vipaddr.Changes, error) {
	return vipaddr.Sync(name, vips)
}

func (nodeBridges) ReadVIPs(name string) ([]netip.Addr, error) { return vipaddr.Read(name) }

func prefixesToIPNets(list []netip.Prefix) []*net.IPNet {
	out := make([]*net.IPNet, 0, len(list))
	for _, p := range list {
		out = append(out, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	return out
}
