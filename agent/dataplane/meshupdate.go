package dataplane

// This file owns the programming of the changed services alone: the endpoint index by service,
// the record of what the mesh holds for each service (meshRecord), and the pass that turns the
// dirty services' views into one load balancer Update, DNS Updates of their zones, and the VIP
// addresses of the bridges whose VIPs changed. Its cost follows the changed services, not the
// number of services, so one endpoint change is as cheap among 10,000 services as among ten.

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/mesh/dns"
	"github.com/shoal/shoal/mesh/vipaddr"
)

// meshRecord is what the mesh holds after the last pass, by service, with the owner of every VIP,
// port and DNS name: an incremental pass takes out of the mesh exactly what a changed service
// had and still owns (a VIP, port or name another service took meanwhile stays).
type meshRecord struct {
	services  map[string]*serviceRecord // by service ID
	vipOwner  map[netip.Addr]string
	portOwner map[mesh.PortKey]string
	nameOwner map[[2]string]string // (network ID, lower-case name) → service ID
	// bridges are the networks whose bridge existed when the whole mesh was programmed: a
	// bridge made since needs its VIP addresses and DNS listener (newBridgeLocked).
	bridges map[string]bool
}

// serviceRecord is what the mesh holds for one service.
type serviceRecord struct {
	vips  map[netip.Addr]string // VIP → its network ID
	ports []mesh.PortKey
	names map[string]string // network ID → the lower-case name its zone answers
}

// serviceMesh is what service s (nil: removed) must hold in the mesh, given its serving
// endpoints: its VIPs and ports for the load balancer, its records in each known network's
// zone, and the record of both.
func (c *Controller) serviceMeshLocked(s *api.ServiceView, eps []*api.Endpoint) (mesh.State, map[string]dns.Service, *serviceRecord) {
	rec := &serviceRecord{vips: map[netip.Addr]string{}, names: map[string]string{}}
	zones := map[string]dns.Service{}
	if s == nil {
		return mesh.State{}, zones, rec
	}
	st := MeshState(MeshView{Services: []*api.ServiceView{s}, Endpoints: eps, LocalVTEP: c.cfg.LocalVTEP})
	for _, v := range st.VIPs {
		rec.vips[v.Addr] = v.Network
	}
	for _, p := range st.Ports {
		rec.ports = append(rec.ports, p.PortKey())
	}
	byService := serviceEndpoints(eps)
	for _, id := range s.GetNetworks() {
		if _, known := c.networks[id]; !known {
			continue // no zone for it (DNSZones makes one per known network)
		}
		if ds, ok := dnsService(id, s, byService); ok {
			zones[id] = ds
			rec.names[id] = strings.ToLower(ds.Name)
		}
	}
	return st, zones, rec
}

// recordMeshLocked records what programming the whole mesh with st and services put there.
func (c *Controller) recordMeshLocked(st mesh.State, services []*api.ServiceView) *meshRecord {
	r := &meshRecord{services: map[string]*serviceRecord{}, vipOwner: map[netip.Addr]string{},
		portOwner: map[mesh.PortKey]string{}, nameOwner: map[[2]string]string{}, bridges: map[string]bool{}}
	of := func(id string) *serviceRecord {
		sr := r.services[id]
		if sr == nil {
			sr = &serviceRecord{vips: map[netip.Addr]string{}, names: map[string]string{}}
			r.services[id] = sr
		}
		return sr
	}
	for _, v := range st.VIPs {
		of(v.Service).vips[v.Addr] = v.Network
		r.vipOwner[v.Addr] = v.Service
	}
	for _, p := range st.Ports {
		sr := of(p.Service)
		sr.ports = append(sr.ports, p.PortKey())
		r.portOwner[p.PortKey()] = p.Service
	}
	for _, s := range services {
		for _, id := range s.GetNetworks() {
			if _, known := c.networks[id]; known && dns.ValidName(s.GetName()) {
				name := strings.ToLower(s.GetName())
				of(s.GetId()).names[id] = name
				r.nameOwner[[2]string{id, name}] = s.GetId()
			}
		}
	}
	for id := range c.networks {
		if c.cfg.Bridges.Exists(cni.BridgeName(id)) {
			r.bridges[id] = true
		}
	}
	return r
}

// dnsChange is one zone's DNS Update.
type dnsChange struct {
	set     []dns.Service
	removed []string
}

// programServicesLocked programs the dirty services alone: one load balancer Update with their
// VIPs and ports (and the removal of those they no longer have), one DNS Update per zone they
// are or were in, and the VIP addresses of the bridges whose VIPs changed. Any failure leaves
// the whole mesh to be programmed: the record is then left as it was; c.mu is held.
func (c *Controller) programServicesLocked() error {
	r := c.programmed
	var u mesh.Update
	zones := map[string]*dnsChange{}
	zone := func(id string) *dnsChange {
		z := zones[id]
		if z == nil {
			z = &dnsChange{}
			zones[id] = z
		}
		return z
	}
	vipNetworks := map[string]bool{} // networks whose bridges' VIP addresses change
	next := map[string]*serviceRecord{}
	for _, id := range slices.Sorted(maps.Keys(c.dirtyServices)) {
		st, records, now := c.serviceMeshLocked(c.services[id], c.serviceEndpointListLocked(id))
		old := r.services[id]
		if old == nil {
			old = &serviceRecord{}
		}
		u.VIPs = append(u.VIPs, st.VIPs...)
		u.Ports = append(u.Ports, st.Ports...)
		for a, network := range old.vips {
			if _, kept := now.vips[a]; !kept && r.vipOwner[a] == id {
				u.RemovedVIPs = append(u.RemovedVIPs, a)
			}
			if now.vips[a] != network {
				vipNetworks[network] = true
			}
		}
		for a, network := range now.vips {
			if old.vips[a] != network {
				vipNetworks[network] = true
			}
		}
		for _, k := range old.ports {
			if !slices.Contains(now.ports, k) && r.portOwner[k] == id {
				u.RemovedPorts = append(u.RemovedPorts, k)
			}
		}
		for network, name := range old.names {
			if now.names[network] != name && r.nameOwner[[2]string{network, name}] == id {
				zone(network).removed = append(zone(network).removed, name)
			}
		}
		for _, network := range slices.Sorted(maps.Keys(records)) {
			zone(network).set = append(zone(network).set, records[network])
		}
		next[id] = now
	}
	if !u.Empty() {
		ch, err := c.cfg.Balancer.Update(u)
		if err != nil {
			return fmt.Errorf("load balancer: %w", err)
		}
		if ch != (mesh.Changes{}) {
			c.cfg.Log.Debug("load balancer updated", "services", len(next), "added", ch.Added, "updated", ch.Updated, "removed", ch.Removed, "rebuilt", ch.Rebuilt)
		}
	}
	if err := c.syncBridgeVIPsLocked(vipNetworks); err != nil {
		return err
	}
	if c.cfg.DNS != nil {
		for _, network := range slices.Sorted(maps.Keys(zones)) {
			z := zones[network]
			if err := c.cfg.DNS.Update(network, z.set, z.removed); err != nil {
				return fmt.Errorf("DNS of network %s: %w", network, err)
			}
		}
		if c.cfg.DNS.Broken() {
			return errors.New("DNS: a listener's socket failed; a Sync opens it anew")
		}
	}
	r.apply(next)
	return nil
}

// syncBridgeVIPsLocked gives the bridges of networks (those here) their VIP addresses. It looks
// at every service: VIPs change when services are made, removed or moved between networks, not
// when their tasks do.
func (c *Controller) syncBridgeVIPsLocked(networks map[string]bool) error {
	if len(networks) == 0 {
		return nil
	}
	vips := BridgeVIPs(c.serviceListLocked())
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(networks)) {
		if _, known := c.networks[id]; !known {
			continue
		}
		_, err := c.cfg.Bridges.SyncVIPs(cni.BridgeName(id), vips[id])
		if err != nil && !errors.Is(err, vipaddr.ErrNoBridge) {
			errs = append(errs, fmt.Errorf("VIP addresses of network %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// apply records that the services of next (by ID) now hold what their records say: what they
// held and no longer do loses its owner first, then what they hold gets them as owner.
func (r *meshRecord) apply(next map[string]*serviceRecord) {
	for id := range next {
		old := r.services[id]
		if old == nil {
			continue
		}
		for a := range old.vips {
			if r.vipOwner[a] == id {
				delete(r.vipOwner, a)
			}
		}
		for _, k := range old.ports {
			if r.portOwner[k] == id {
				delete(r.portOwner, k)
			}
		}
		for network, name := range old.names {
			if k := [2]string{network, name}; r.nameOwner[k] == id {
				delete(r.nameOwner, k)
			}
		}
	}
	for id, now := range next {
		for a := range now.vips {
			r.vipOwner[a] = id
		}
		for _, k := range now.ports {
			r.portOwner[k] = id
		}
		for network, name := range now.names {
			r.nameOwner[[2]string{network, name}] = id
		}
		if len(now.vips) == 0 && len(now.ports) == 0 && len(now.names) == 0 {
			delete(r.services, id)
		} else {
			r.services[id] = now
		}
	}
}

// dirtyServiceListLocked returns the dirty services that still exist.
func (c *Controller) dirtyServiceListLocked() []*api.ServiceView {
	var out []*api.ServiceView
	for id := range c.dirtyServices {
		if s := c.services[id]; s != nil {
			out = append(out, s)
		}
	}
	return out
}

// serviceEndpointListLocked returns the endpoints of service id, on every network.
func (c *Controller) serviceEndpointListLocked(id string) []*api.Endpoint {
	return slices.Collect(maps.Values(c.serviceEPs[id]))
}
