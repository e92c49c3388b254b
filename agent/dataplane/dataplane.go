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
	Update(networkID string, u overlay.EndpointUpdate) (overlay.Changes, error)
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
	dirty     map[string]bool                     // networks to program whole
	// ipTasks indexes endpoints by network and address: the tasks that claim each address (one,
	// but for a view in flux).
	ipTasks map[string]map[netip.Addr]map[string]bool
	// dirtyIPs are, by network, the addresses whose endpoints changed since the last pass:
	// unless the network is dirty as a whole, a pass programs them alone (updateLocked).
	dirtyIPs map[string]map[netip.Addr]bool
	// synced are the networks whose last Sync programmed their device (the overlay holds what it
	// applied, for Updates); bridgeless those whose last Sync found no bridge here: their changed
	// addresses wait for a Sync that finds one (a task's attach, an ingress port, the repair
	// pass), so that a node without the network pays nothing for its endpoints' changes.
	synced, bridgeless map[string]bool
	sweep              bool // remove devices of unknown networks
	haveView           bool // a COMPLETE view has come: the known networks are all there are

	services     map[string]*api.ServiceView // by ID
	haveServices bool                        // a COMPLETE view of the services has come
	meshDirty    bool                        // the whole mesh is to be programmed
	repairMesh   bool                        // the next pass repairs the mesh from the kernel
	// serviceEPs indexes endpoints by service ID, then by (network ID, task ID): what a pass
	// needs to program one service without looking at the others.
	serviceEPs map[string]map[[2]string]*api.Endpoint
	// dirtyServices are the services whose views or endpoints changed since the last pass:
	// unless the whole mesh is dirty, a pass programs only them (programServicesLocked).
	dirtyServices map[string]bool
	// programmed is what the mesh holds, by service, after the last pass that succeeded; nil
	// when the next pass must program the whole mesh.
	programmed *meshRecord
	// localTasks are the addresses of the tasks running here, by task ID and network ID, for the
	// DNS server's clients (a task on several networks resolves the names of all of them);
	// clientsDirty says they changed since the server was last told.
	localTasks   map[string]map[string]netip.Addr
	clientsDirty bool
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
		endpoints: map[string]map[string]*api.Endpoint{}, dirty: map[string]bool{}, services: map[string]*api.ServiceView{},
		serviceEPs: map[string]map[[2]string]*api.Endpoint{}, dirtyServices: map[string]bool{},
		ipTasks: map[string]map[netip.Addr]map[string]bool{}, dirtyIPs: map[string]map[netip.Addr]bool{},
		synced: map[string]bool{}, bridgeless: map[string]bool{}, localTasks: map[string]map[string]netip.Addr{}}
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
		clear(c.serviceEPs)
		clear(c.ipTasks)
		clear(c.dirtyIPs)
		clear(c.localTasks)
		c.clientsDirty = true
		c.sweep, c.haveView = true, true
		c.meshDirty = true
	}
	for _, k := range removed {
		c.forgetEndpointLocked(k.GetNetworkId(), k.GetTaskId())
	}
	for _, ep := range set {
		c.forgetEndpointLocked(ep.GetNetworkId(), ep.GetTaskId())
		c.indexEndpointLocked(ep)
		if complete {
			c.dirty[ep.GetNetworkId()] = true
		}
	}
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
		if c.synced[id] {
			continue // its device is on its bridge; a new bridge would have had no Sync
		}
		if err := c.syncLocked(id); err != nil {
			errs = append(errs, err)
		}
	}
	// A bridge new since the mesh was programmed needs its VIP addresses and
	// its DNS listener: the whole mesh is programmed then.
	if c.newBridgeLocked(networkIDs) {
		c.meshDirty = true
	}
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
		delete(c.dirtyIPs, id)
		if err := c.syncLocked(id); err != nil {
			c.cfg.Log.Warn("program the overlay", "network", id, "err", err)
			// Left for the repair pass: retrying at once would spin.
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.dirtyIPs)) {
		ips := c.dirtyIPs[id]
		delete(c.dirtyIPs, id)
		if err := c.updateLocked(id, ips); err != nil {
			c.cfg.Log.Warn("program the overlay", "network", id, "err", err)
		}
	}
	repair := c.repairMesh
	c.repairMesh = false
	c.syncMeshLocked(repair)
	c.setDNSClientsLocked()
}

// RemoveNetworks forgets networks the cluster removed and deletes their
// devices now, before a network made next can want their VNI or subnet.
func (c *Controller) RemoveNetworks(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		for task := range c.endpoints[id] {
			c.forgetEndpointLocked(id, task)
		}
		delete(c.networks, id)
		delete(c.endpoints, id)
		delete(c.ipTasks, id)
		delete(c.dirtyIPs, id)
		delete(c.synced, id)
		delete(c.bridgeless, id)
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

// updateLocked programs the endpoints of network id at ips alone, when the overlay holds what
// the network's last Sync applied; else, or when that fails, it programs the network whole;
// c.mu is held.
func (c *Controller) updateLocked(id string, ips map[netip.Addr]bool) error {
	if _, ok := c.networks[id]; !ok || c.bridgeless[id] {
		return nil // not known yet, or nothing to connect here: a Sync comes first
	}
	var u overlay.EndpointUpdate
	for _, ip := range slices.SortedFunc(maps.Keys(ips), netip.Addr.Compare) {
		if e, ok := c.programmedAtLocked(id, ip); ok {
			u.Set = append(u.Set, e)
		} else {
			u.Removed = append(u.Removed, ip)
		}
	}
	ch, err := c.cfg.Overlay.Update(id, u)
	if err == nil {
		if ch != (overlay.Changes{}) {
			c.cfg.Log.Debug("overlay updated", "network", id, "added", ch.Added, "replaced", ch.Replaced, "removed", ch.Removed)
		}
		return nil
	}
	if !errors.Is(err, overlay.ErrNotSynced) {
		c.cfg.Log.Info("program changed endpoints alone; programming the network whole", "network", id, "err", err)
	}
	return c.syncLocked(id)
}

// syncLocked programs network id; c.mu is held.
func (c *Controller) syncLocked(id string) error {
	d, ok := c.desiredLocked(id)
	if !ok {
		return nil // not known yet: its definition comes with the task that needs it
	}
	delete(c.synced, id)
	delete(c.bridgeless, id)
	ch, err := c.cfg.Overlay.Sync(d)
	if errors.Is(err, overlay.ErrNoBridge) {
		c.bridgeless[id] = true
		return nil // no task of it here: nothing to connect
	}
	if err != nil {
		return fmt.Errorf("network %s: %w", id, err)
	}
	c.synced[id] = true
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
	for _, e := range k.Bridge {
		st.BridgeFdb = append(st.BridgeFdb, &api.OverlayKernelState_BridgeEntry{Mac: e.MAC.String(), Kind: string(e.Kind)})
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
	// No Peers: the overlay floods to the VTEP of every remote endpoint, and to those alone, so a
	// node whose last endpoint goes stops getting the network's broadcasts with an Update too.
	for _, ip := range slices.SortedFunc(maps.Keys(c.ipTasks[id]), netip.Addr.Compare) {
		if e, ok := c.programmedAtLocked(id, ip); ok {
			d.Endpoints = append(d.Endpoints, e)
		}
	}
	return d, true
}

// programmedAtLocked is the endpoint the overlay programs at address ip of network id: of the
// tasks that claim the address, the first by task ID whose endpoint the overlay can carry; false
// when there is none. Two tasks on one address: the manager never allows it, so a view saying so
// is in flux, and the first stands until it settles. c.mu is held.
func (c *Controller) programmedAtLocked(id string, ip netip.Addr) (overlay.Endpoint, bool) {
	var first *api.Endpoint
	var out overlay.Endpoint
	for _, task := range slices.Sorted(maps.Keys(c.ipTasks[id][ip])) {
		ep := c.endpoints[id][task]
		vtep, err1 := netip.ParseAddr(ep.GetVtep())
		mac, err2 := net.ParseMAC(ep.GetMac())
		// One endpoint the overlay cannot carry is skipped, not the network.
		if err1 != nil || err2 != nil || !vtep.Is4() || vtep.IsLoopback() || len(mac) != 6 {
			c.cfg.Log.Warn("an endpoint that cannot be programmed", "network", id, "task", task, "ip", ep.GetIp(), "vtep", ep.GetVtep(), "mac", ep.GetMac())
			continue
		}
		if first != nil {
			c.cfg.Log.Warn("two endpoints with one address; programming the first", "network", id, "ip", ip, "task", first.GetTaskId(), "skipped", task)
			continue
		}
		first, out = ep, overlay.Endpoint{IP: ip, MAC: mac, VTEP: vtep}
	}
	return out, first != nil
}

// endpointAddr is the address of ep the overlay keys it by: its IPv4 address, or false when it
// has none (an endpoint the overlay cannot carry).
func endpointAddr(ep *api.Endpoint) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(ep.GetIp())
	return ip, err == nil && ip.Is4()
}

// indexEndpointLocked adds ep to the endpoints and their indexes, and marks its service and its
// address dirty.
func (c *Controller) indexEndpointLocked(ep *api.Endpoint) {
	network, task := ep.GetNetworkId(), ep.GetTaskId()
	m := c.endpoints[network]
	if m == nil {
		m = map[string]*api.Endpoint{}
		c.endpoints[network] = m
	}
	m[task] = ep
	id := ep.GetServiceId()
	byTask := c.serviceEPs[id]
	if byTask == nil {
		byTask = map[[2]string]*api.Endpoint{}
		c.serviceEPs[id] = byTask
	}
	byTask[[2]string{network, task}] = ep
	c.dirtyServices[id] = true
	if ip, ok := endpointAddr(ep); ok {
		c.ipTasks[network] = addToSet(c.ipTasks[network], ip, task)
		c.markIPLocked(network, ip)
		if ep.GetVtep() == c.cfg.LocalVTEP.String() {
			if c.localTasks[task] == nil {
				c.localTasks[task] = map[string]netip.Addr{}
			}
			c.localTasks[task][network] = ip
			c.clientsDirty = true
		}
	} else {
		c.cfg.Log.Warn("an endpoint that cannot be programmed", "network", network, "task", task, "ip", ep.GetIp())
	}
}

// forgetEndpointLocked removes the endpoint of task on network, if known, from the endpoints and
// their indexes, and marks its service and its address dirty.
func (c *Controller) forgetEndpointLocked(network, task string) {
	ep, ok := c.endpoints[network][task]
	if !ok {
		return
	}
	delete(c.endpoints[network], task)
	id := ep.GetServiceId()
	delete(c.serviceEPs[id], [2]string{network, task})
	if len(c.serviceEPs[id]) == 0 {
		delete(c.serviceEPs, id)
	}
	c.dirtyServices[id] = true
	if ip, ok := endpointAddr(ep); ok {
		tasks := c.ipTasks[network][ip]
		delete(tasks, task)
		if len(tasks) == 0 {
			delete(c.ipTasks[network], ip)
		}
		c.markIPLocked(network, ip)
	}
	if _, ok := c.localTasks[task][network]; ok {
		delete(c.localTasks[task], network)
		if len(c.localTasks[task]) == 0 {
			delete(c.localTasks, task)
		}
		c.clientsDirty = true
	}
}

// markIPLocked marks address ip of network dirty for the next pass.
func (c *Controller) markIPLocked(network string, ip netip.Addr) {
	m := c.dirtyIPs[network]
	if m == nil {
		m = map[netip.Addr]bool{}
		c.dirtyIPs[network] = m
	}
	m[ip] = true
}

func addToSet(m map[netip.Addr]map[string]bool, ip netip.Addr, task string) map[netip.Addr]map[string]bool {
	if m == nil {
		m = map[netip.Addr]map[string]bool{}
	}
	if m[ip] == nil {
		m[ip] = map[string]bool{}
	}
	m[ip][task] = true
	return m
}
