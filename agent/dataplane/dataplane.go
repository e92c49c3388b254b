// Package dataplane keeps the node's copy of the cluster's network views —
// the networks' definitions and endpoints, as the dispatcher streams them —
// and programs the node's overlay from it (overlay.Manager): for each
// network with a bridge on this node, a VXLAN device and forwarding entries
// for every endpoint on another node.
//
// Changes are programmed as they arrive, network by network; a COMPLETE view
// (every new assignments stream) replaces the copy, and the next pass
// removes whatever is no longer desired, devices of networks that are gone
// included. A periodic pass repairs what was changed behind its back.
//
// It imports api, agent/cni (bridge names) and overlay; it never talks to
// managers itself.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/mesh"
	"github.com/shoal/shoal/overlay"
)

// overlayDevicePrefix starts the name of every overlay device
// (overlay.DeviceName).
const overlayDevicePrefix = "shx"

// Overlay is what the controller needs of overlay.Manager.
type Overlay interface {
	Sync(overlay.Desired) (overlay.Changes, error)
	Remove(networkID string) error
	Devices() ([]overlay.Device, error)
	Inspect(overlay.Desired) (overlay.Report, error)
	Read(networkID string) (overlay.Kernel, error)
}

// Config sets up a Controller.
type Config struct {
	// LocalVTEP is this node's underlay address; endpoints there are local.
	LocalVTEP netip.Addr
	// Overlay programs the kernel.
	Overlay Overlay
	// MTU is the VXLAN devices' MTU (the underlay's less 50).
	MTU int
	// RepairPeriod is how often every network is programmed again; 0 means
	// 30 s.
	RepairPeriod time.Duration
	// Balancer, DNS and Bridges program the node's service mesh; with no
	// Balancer or Bridges the node runs none.
	Balancer mesh.Balancer
	DNS      DNSServer
	Bridges  Bridges
	Log      *slog.Logger
}

// Controller is the node's network views and the programming of its
// overlay.
type Controller struct {
	cfg  Config
	wake chan struct{}

	mu        sync.Mutex
	networks  map[string]*api.Network             // by ID
	endpoints map[string]map[string]*api.Endpoint // network ID → task ID → endpoint
	dirty     map[string]bool                     // networks to program
	sweep     bool                                // remove devices of unknown networks
	haveView  bool                                // a COMPLETE view has come: the known networks are all there are

	services     map[string]*api.ServiceView // by ID
	haveServices bool                        // a COMPLETE view of the services has come
	meshDirty    bool                        // the mesh is to be programmed
	repairMesh   bool                        // the next pass repairs the mesh from the kernel
}

// New returns a controller; Run programs.
func New(cfg Config) *Controller {
	if cfg.RepairPeriod == 0 {
		cfg.RepairPeriod = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Controller{cfg: cfg, wake: make(chan struct{}, 1), networks: map[string]*api.Network{},
		endpoints: map[string]map[string]*api.Endpoint{}, dirty: map[string]bool{}, services: map[string]*api.ServiceView{}}
}

// SetNetworks records network definitions (an assignments message's).
func (c *Controller) SetNetworks(nets []*api.Network) {
	c.mu.Lock()
	for _, n := range nets {
		c.networks[n.GetId()] = n
		c.dirty[n.GetId()] = true
	}
	c.meshDirty = true
	c.mu.Unlock()
	c.kick()
}

// ApplyEndpoints applies an assignments message's endpoint views: with
// complete, set is the whole view; otherwise set and removed are changes.
func (c *Controller) ApplyEndpoints(complete bool, set []*api.Endpoint, removed []*api.EndpointKey) {
	c.mu.Lock()
	if complete {
		for id := range c.endpoints {
			c.dirty[id] = true
		}
		clear(c.endpoints)
		c.sweep, c.haveView = true, true
	}
	for _, k := range removed {
		delete(c.endpoints[k.GetNetworkId()], k.GetTaskId())
		c.dirty[k.GetNetworkId()] = true
	}
	for _, ep := range set {
		m := c.endpoints[ep.GetNetworkId()]
		if m == nil {
			m = map[string]*api.Endpoint{}
			c.endpoints[ep.GetNetworkId()] = m
		}
		m[ep.GetTaskId()] = ep
		c.dirty[ep.GetNetworkId()] = true
	}
	c.meshDirty = true
	c.mu.Unlock()
	c.kick()
}

func (c *Controller) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Ensure programs networks now: a task was just attached to them, and its
// bridge may be new. A network without a bridge here is skipped.
func (c *Controller) Ensure(networkIDs []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, id := range networkIDs {
		if err := c.syncLocked(id); err != nil {
			errs = append(errs, err)
		}
	}
	// The task's bridge may be new: its VIP addresses and its DNS listener
	// come with it.
	c.meshDirty = true
	c.syncMeshLocked(false)
	if len(errs) > 0 {
		return fmt.Errorf("dataplane: %w", errors.Join(errs...))
	}
	return nil
}

// Run programs changes as they come, and everything every RepairPeriod,
// until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	repair := time.NewTicker(c.cfg.RepairPeriod)
	defer repair.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-repair.C:
			c.mu.Lock()
			for id := range c.networks {
				c.dirty[id] = true
			}
			// Before any view, the known networks are not all there are: an agent
			// started while no leader answers must not remove what its tasks use.
			c.sweep = c.haveView
			c.repairMesh = true
			c.mu.Unlock()
		}
		c.pass()
	}
}

// pass removes the devices of networks that are not known (after a complete
// view), then programs the dirty networks.
func (c *Controller) pass() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked()
	c.ensureIngressBridgesLocked()
	for _, id := range slices.Sorted(maps.Keys(c.dirty)) {
		delete(c.dirty, id)
		if err := c.syncLocked(id); err != nil {
			c.cfg.Log.Warn("program the overlay", "network", id, "err", err)
			// Left for the repair pass: retrying at once would spin.
		}
	}
	repair := c.repairMesh
	c.repairMesh = false
	c.syncMeshLocked(repair)
}

// RemoveNetworks forgets networks the cluster removed and deletes their
// devices now, before a network made next can want their VNI or subnet.
func (c *Controller) RemoveNetworks(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.networks, id)
		delete(c.endpoints, id)
		delete(c.dirty, id)
		if err := c.cfg.Overlay.Remove(id); err != nil {
			c.cfg.Log.Warn("remove the overlay device of a removed network", "network", id, "err", err)
			c.sweep = c.haveView // retried by the next pass
		}
	}
	// Its DNS zone and listener go with it.
	c.meshDirty = true
	c.kick()
}

// sweepLocked removes the devices of networks that are not known, once a
// sweep is due; c.mu is held.
func (c *Controller) sweepLocked() {
	if !c.sweep {
		return
	}
	c.sweep = false
	devs, err := c.cfg.Overlay.Devices()
	if err != nil {
		c.cfg.Log.Warn("list overlay devices", "err", err)
		return
	}
	known := map[string]bool{}
	for id := range c.networks {
		known[overlay.DeviceName(id)] = true
	}
	for _, d := range devs {
		if known[d.Name] {
			continue
		}
		c.cfg.Log.Info("removing the overlay device of a network that is gone", "device", d.Name)
		// A device is named by its network ID's first characters, which is all
		// Remove needs of an ID.
		if err := c.cfg.Overlay.Remove(strings.TrimPrefix(d.Name, overlayDevicePrefix)); err != nil {
			c.cfg.Log.Warn("remove an overlay device", "device", d.Name, "err", err)
		}
	}
}

// syncLocked programs network id; c.mu is held.
func (c *Controller) syncLocked(id string) error {
	d, ok := c.desiredLocked(id)
	if !ok {
		return nil // not known yet: its definition comes with the task that needs it
	}
	ch, err := c.cfg.Overlay.Sync(d)
	if errors.Is(err, overlay.ErrNoBridge) {
		return nil // no task of it here: nothing to connect
	}
	if err != nil {
		return fmt.Errorf("network %s: %w", id, err)
	}
	if ch != (overlay.Changes{}) {
		c.cfg.Log.Debug("overlay programmed", "network", id, "added", ch.Added, "replaced", ch.Replaced, "removed", ch.Removed, "device_created", ch.DeviceCreated)
	}
	return nil
}

// Desired is network id's desired overlay state on this node, false if
// the network is not known here.
func (c *Controller) Desired(id string) (overlay.Desired, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.desiredLocked(id)
}

// Inspect compares network id's kernel state with the desired one.
func (c *Controller) Inspect(id string) (overlay.Report, error) {
	d, ok := c.Desired(id)
	if !ok {
		return overlay.Report{}, fmt.Errorf("network %s is not known on this node", id)
	}
	return c.cfg.Overlay.Inspect(d)
}

// Read returns the kernel's overlay state of networkIDs (none: every known network with a
// device here), for a manager's dataplane query.
func (c *Controller) Read(networkIDs []string) ([]*api.OverlayKernelState, error) {
	if len(networkIDs) == 0 {
		devs, err := c.cfg.Overlay.Devices()
		if err != nil {
			return nil, fmt.Errorf("dataplane: %w", err)
		}
		names := map[string]bool{}
		for _, d := range devs {
			names[d.Name] = true
		}
		for _, n := range c.Networks() {
			if names[overlay.DeviceName(n.GetId())] {
				networkIDs = append(networkIDs, n.GetId())
			}
		}
	}
	out := make([]*api.OverlayKernelState, 0, len(networkIDs))
	for _, id := range networkIDs {
		k, err := c.cfg.Overlay.Read(id)
		if err != nil {
			return nil, fmt.Errorf("dataplane: network %s: %w", id, err)
		}
		out = append(out, kernelState(id, c.cfg.LocalVTEP, k))
	}
	return out, nil
}

// kernelState is k on the wire.
func kernelState(networkID string, local netip.Addr, k overlay.Kernel) *api.OverlayKernelState {
	d := k.Device
	st := &api.OverlayKernelState{
		NetworkId: networkID, Device: d.Name, DeviceExists: d.Exists, Vni: d.VNI, Port: uint32(d.Port),
		Mtu: uint32(d.MTU), Master: d.Master, Up: d.Up, Learning: d.Learning, Proxy: d.Proxy,
		LocalVtep: local.String(),
	}
	if d.Local.IsValid() {
		st.Local = d.Local.String()
	}
	for _, e := range k.FDB {
		st.Fdb = append(st.Fdb, &api.OverlayKernelState_FDBEntry{Mac: e.MAC.String(), Dst: e.VTEP.String(), Permanent: e.Permanent})
	}
	for _, e := range k.Neighbours {
		st.Neigh = append(st.Neigh, &api.OverlayKernelState_NeighEntry{Ip: e.IP.String(), Mac: e.MAC.String(), Permanent: e.Permanent})
	}
	return st
}

// Networks lists the known networks, by ID.
func (c *Controller) Networks() []*api.Network {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*api.Network, 0, len(c.networks))
	for _, n := range c.networks {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *api.Network) int { return strings.Compare(a.GetId(), b.GetId()) })
	return out
}

func (c *Controller) desiredLocked(id string) (overlay.Desired, bool) {
	n, ok := c.networks[id]
	if !ok {
		return overlay.Desired{}, false
	}
	d := overlay.Desired{Network: overlay.Network{ID: id, VNI: n.GetVni(), Bridge: cni.BridgeName(id), MTU: c.cfg.MTU}}
	peers := map[netip.Addr]bool{}
	byIP := map[netip.Addr]*api.Endpoint{}
	for _, taskID := range slices.Sorted(maps.Keys(c.endpoints[id])) {
		ep := c.endpoints[id][taskID]
		ip, err1 := netip.ParseAddr(ep.GetIp())
		vtep, err2 := netip.ParseAddr(ep.GetVtep())
		mac, err3 := net.ParseMAC(ep.GetMac())
		// One endpoint the overlay cannot carry is skipped, not the network.
		if err1 != nil || err2 != nil || err3 != nil || !ip.Is4() || !vtep.Is4() || vtep.IsLoopback() || len(mac) != 6 {
			c.cfg.Log.Warn("an endpoint that cannot be programmed", "network", id, "task", ep.GetTaskId(), "ip", ep.GetIp(), "vtep", ep.GetVtep(), "mac", ep.GetMac())
			continue
		}
		if other, ok := byIP[ip]; ok {
			// Two tasks on one address: the manager never allows it, so a view
			// saying so is in flux; the first (by task ID) stands until it settles.
			c.cfg.Log.Warn("two endpoints with one address; programming the first", "network", id, "ip", ip, "task", other.GetTaskId(), "skipped", ep.GetTaskId())
			continue
		}
		byIP[ip] = ep
		d.Endpoints = append(d.Endpoints, overlay.Endpoint{IP: ip, MAC: mac, VTEP: vtep})
		if vtep != c.cfg.LocalVTEP {
			peers[vtep] = true
		}
	}
	slices.SortFunc(d.Endpoints, func(a, b overlay.Endpoint) int { return a.IP.Compare(b.IP) })
	d.Peers = slices.SortedFunc(maps.Keys(peers), func(a, b netip.Addr) int { return a.Compare(b) })
	return d, true
}
