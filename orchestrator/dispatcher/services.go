package dispatcher

// This file owns the services' mesh views: what every node needs of a
// service to balance its VIPs and published ports and to answer its DNS
// names (its name, endpoint mode, ports, networks and VIPs). The backends
// are not here: they are the endpoints of the service's tasks (endpoints.go),
// which every node already receives. Run keeps the table from its store
// watch, under d.mu, like the endpoint table, and hands each change to every
// Assignments stream; a stream's COMPLETE message carries the whole table.

import (
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// serviceTable is the mesh view of every service.
type serviceTable struct {
	views map[string]*api.ServiceView  // service ID → view; read-only once in the table
	specs map[string]*api.Service      // service ID → service (read-only: store objects)
	vips  map[string]map[string]string // service ID → network ID → VIP (from the VIP bindings)
}

func newServiceTable() *serviceTable {
	return &serviceTable{views: map[string]*api.ServiceView{}, specs: map[string]*api.Service{}, vips: map[string]map[string]string{}}
}

// svcChange is one change of the table: a view set, or the service removed
// (view nil).
type svcChange struct {
	id   string
	view *api.ServiceView
}

// rebuild replaces the table with what services and bindings (read-only)
// make it.
func (st *serviceTable) rebuild(services []*api.Service, bindings []*api.IPBinding) {
	*st = *newServiceTable()
	for _, b := range bindings {
		st.setVIP(b, false)
	}
	for _, s := range services {
		st.specs[s.Id] = s
		st.views[s.Id] = st.viewOf(s)
	}
}

// setVIP records (or with deleted forgets) the VIP binding b; other kinds
// of binding are not the table's.
func (st *serviceTable) setVIP(b *api.IPBinding, deleted bool) {
	if b == nil || b.Kind != api.IPBinding_KIND_VIP {
		return
	}
	if deleted {
		delete(st.vips[b.ServiceId], b.NetworkId)
		return
	}
	m := st.vips[b.ServiceId]
	if m == nil {
		m = map[string]string{}
		st.vips[b.ServiceId] = m
	}
	m[b.NetworkId] = b.Address
}

// viewOf is s's view as the table's VIPs stand.
func (st *serviceTable) viewOf(s *api.Service) *api.ServiceView {
	spec := s.GetSpec()
	v := &api.ServiceView{
		Id:   s.Id,
		Name: spec.GetAnnotations().GetName(),
		Mode: spec.GetEndpoint().GetMode(),
	}
	for _, p := range spec.GetEndpoint().GetPorts() {
		v.Ports = append(v.Ports, proto.Clone(p).(*api.PortConfig))
	}
	for _, n := range spec.GetTask().GetNetworks() {
		v.Networks = append(v.Networks, n.GetTarget())
		if v.Mode != api.EndpointSpec_MODE_VIP {
			continue
		}
		// A VIP binding outlives a switch to dnsrr until the allocator frees
		// it; only a vip-mode service has VIPs.
		if p, err := netip.ParsePrefix(st.vips[s.Id][n.GetTarget()]); err == nil {
			v.Vips = append(v.Vips, &api.ServiceVIP{NetworkId: n.GetTarget(), Ip: p.Addr().String()})
		}
	}
	return v
}

// refresh recomputes service id's view and returns the change, if any.
func (st *serviceTable) refresh(id string) []svcChange {
	s := st.specs[id]
	if s == nil {
		if _, ok := st.views[id]; !ok {
			return nil
		}
		delete(st.views, id)
		return []svcChange{{id: id}}
	}
	v := st.viewOf(s)
	if have, ok := st.views[id]; ok && proto.Equal(have, v) {
		return nil
	}
	st.views[id] = v
	return []svcChange{{id: id, view: v}}
}

// all is every view, sorted by service ID.
func (st *serviceTable) all() []*api.ServiceView {
	out := make([]*api.ServiceView, 0, len(st.views))
	for _, v := range st.views {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *api.ServiceView) int { return strings.Compare(a.Id, b.Id) })
	return out
}

// noteEvent applies a store event to the table and returns its changes.
func (st *serviceTable) noteEvent(ev store.Event) []svcChange {
	deleted := ev.Action == api.StoreAction_KIND_DELETE
	switch ev.Kind {
	case store.KindService:
		s, _ := ev.Object.(*api.Service)
		if s == nil {
			return nil
		}
		if deleted {
			delete(st.specs, s.Id)
			delete(st.vips, s.Id)
		} else {
			st.specs[s.Id] = s
		}
		return st.refresh(s.Id)
	case store.KindBinding:
		b, _ := ev.Object.(*api.IPBinding)
		if b == nil || b.Kind != api.IPBinding_KIND_VIP {
			return nil
		}
		st.setVIP(b, deleted)
		return st.refresh(b.ServiceId)
	}
	return nil
}
