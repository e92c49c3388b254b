package ipvs

// This file talks to IPVS through github.com/moby/ipvs, in the calling thread's network
// namespace: reading this package's fwmark services, applying service and destination changes,
// and the IPVS settings the Balancer relies on.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	lvs "github.com/moby/ipvs"
	"github.com/shoal/shoal/mesh"
	"golang.org/x/sys/unix"
)

// sysctls are the IPVS settings the Balancer needs: conntrack entries for IPVS connections, so
// that the postrouting chain can SNAT ingress connections and bridged replies are un-NATed;
// and connections to a removed destination dropped at once instead of hanging.
var sysctls = map[string]string{
	"/proc/sys/net/ipv4/vs/conntrack":          "1",
	"/proc/sys/net/ipv4/vs/expire_nodest_conn": "1",
}

func ensureSysctls() error {
	for path, value := range sysctls {
		cur, err := os.ReadFile(path)
		if err == nil && strings.TrimSpace(string(cur)) == value {
			continue
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("set %s to %s: %w", path, value, err)
		}
	}
	return nil
}

// openIPVS opens an IPVS handle in the calling thread's network namespace.
func openIPVS() (*lvs.Handle, error) {
	h, err := lvs.New("")
	if err != nil {
		return nil, fmt.Errorf("open an IPVS netlink socket: %w", err)
	}
	return h, nil
}

func fwmarkService(mark uint32, sched string) *lvs.Service {
	return &lvs.Service{FWMark: mark, AddressFamily: unix.AF_INET, SchedName: sched, Netmask: 0xffffffff}
}

func destination(d mesh.Backend) *lvs.Destination {
	return &lvs.Destination{
		Address: net.IP(d.Addr.AsSlice()), Port: d.Port, Weight: 1,
		ConnectionFlags: lvs.ConnFwdMasq, AddressFamily: unix.AF_INET,
	}
}

// readServices reads this package's fwmark services and their destinations into m.
func readServices(h *lvs.Handle, m *model) error {
	svcs, err := h.GetServices()
	if err != nil {
		return fmt.Errorf("list IPVS services: %w", err)
	}
	for _, s := range svcs {
		if s.AddressFamily != unix.AF_INET || !ours(s.FWMark) {
			continue
		}
		dests, err := h.GetDestinations(s)
		if err != nil {
			return fmt.Errorf("list the destinations of IPVS service %s: %w", describeMark(s.FWMark), err)
		}
		svc := service{sched: s.SchedName}
		for _, d := range dests {
			a, ok := netip.AddrFromSlice(d.Address)
			if !ok {
				continue
			}
			svc.dests = append(svc.dests, mesh.Backend{Addr: a.Unmap(), Port: d.Port})
		}
		sortBackends(svc.dests)
		m.services[s.FWMark] = svc
	}
	return nil
}

// serviceChanges are the IPVS operations of one plan, in the order they are applied.
type serviceChanges struct {
	create   map[uint32]service // new services, with their destinations
	resched  map[uint32]string  // existing services whose scheduler changes
	addDests map[uint32][]mesh.Backend
	delDests map[uint32][]mesh.Backend
	remove   []uint32 // services deleted, after the mark table stopped marking for them
}

// applyBefore creates services and destinations: before the mark table sends packets to them.
func (sc serviceChanges) applyBefore(h *lvs.Handle) error {
	for _, mark := range sortedMarks(sc.create) {
		svc := sc.create[mark]
		s := fwmarkService(mark, svc.sched)
		if err := h.NewService(s); err != nil {
			return fmt.Errorf("create IPVS service %s: %w", describeMark(mark), err)
		}
		for _, d := range svc.dests {
			if err := h.NewDestination(s, destination(d)); err != nil {
				return fmt.Errorf("add destination %s to IPVS service %s: %w", d, describeMark(mark), err)
			}
		}
	}
	for _, mark := range sortedMarks(sc.resched) {
		if err := h.UpdateService(fwmarkService(mark, sc.resched[mark])); err != nil {
			return fmt.Errorf("set the scheduler of IPVS service %s: %w", describeMark(mark), err)
		}
	}
	for _, mark := range sortedMarks(sc.addDests) {
		for _, d := range sc.addDests[mark] {
			if err := h.NewDestination(fwmarkService(mark, ""), destination(d)); err != nil {
				return fmt.Errorf("add destination %s to IPVS service %s: %w", d, describeMark(mark), err)
			}
		}
	}
	return nil
}

// applyAfter deletes destinations and services: after the mark table stopped marking for them.
func (sc serviceChanges) applyAfter(h *lvs.Handle) error {
	for _, mark := range sortedMarks(sc.delDests) {
		for _, d := range sc.delDests[mark] {
			if err := h.DelDestination(fwmarkService(mark, ""), destination(d)); err != nil {
				return fmt.Errorf("delete destination %s of IPVS service %s: %w", d, describeMark(mark), err)
			}
		}
	}
	for _, mark := range sc.remove {
		if err := h.DelService(fwmarkService(mark, "")); err != nil {
			return fmt.Errorf("delete IPVS service %s: %w", describeMark(mark), err)
		}
	}
	return nil
}

func (sc serviceChanges) empty() bool {
	return len(sc.create)+len(sc.resched)+len(sc.addDests)+len(sc.delDests)+len(sc.remove) == 0
}
