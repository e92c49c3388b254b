package allocator

// This file owns a network's address pools: one ipam.Pool per subnet, built from the network's
// spec, restored from its allocation record, and written back to that record.

import (
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/ipam"
)

// Cooldown is how long a freed address stays out of automatic allocation, so stale ARP,
// neighbour, conntrack and forwarding entries elsewhere in the cluster cannot reach a new owner.
// It is the same on every manager: a new leader must rebuild the pools the old one had.
const Cooldown = 30 * time.Second

// PoolConfig is the ipam configuration of one subnet of a network spec, with the allocator's
// Cooldown. The control API has validated the spec; an error here means a record written by
// something else.
func PoolConfig(c *api.IPAMConfig) (ipam.Config, error) {
	cfg, err := ipam.ConfigOf(c)
	cfg.Cooldown = Cooldown
	return cfg, err
}

// netPools is one network's pools, in the order of its spec's subnets.
type netPools struct {
	id, name string
	subnets  []subnetPool
	touched  bool // a pool call was made since the record was last written
}

type subnetPool struct {
	prefix netip.Prefix
	pool   *ipam.Pool
}

func newNetPools(n *api.Network) (*netPools, error) {
	np := &netPools{id: n.GetId(), name: n.GetSpec().GetAnnotations().GetName()}
	for i, c := range n.GetSpec().GetIpam() {
		cfg, err := PoolConfig(c)
		if err == nil {
			var p *ipam.Pool
			if p, err = ipam.New(cfg); err == nil {
				np.subnets = append(np.subnets, subnetPool{cfg.Subnet, p})
				continue
			}
		}
		return nil, fmt.Errorf("network %s subnet %d: %w", np.name, i, err)
	}
	return np, nil
}

// subnetOf is the pool whose subnet holds addr, nil if none does.
func (np *netPools) subnetOf(addr netip.Addr) *subnetPool {
	for i := range np.subnets {
		if np.subnets[i].prefix.Contains(addr) {
			return &np.subnets[i]
		}
	}
	return nil
}

// allocateNext hands out the next free address of the first subnet that has one.
func (np *netPools) allocateNext(now time.Time) (netip.Prefix, error) {
	np.touched = true
	var first error
	for _, sp := range np.subnets {
		a, err := sp.pool.AllocateNext(now)
		if err == nil {
			return netip.PrefixFrom(a, sp.prefix.Bits()), nil
		}
		first = cmpErr(first, err)
	}
	if first == nil {
		first = fmt.Errorf("network %s has no subnet", np.name)
	}
	return netip.Prefix{}, first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// allocateSpecific takes addr (a pin).
func (np *netPools) allocateSpecific(addr netip.Addr, now time.Time, policy ipam.PinPolicy) (netip.Prefix, error) {
	sp := np.subnetOf(addr)
	if sp == nil {
		return netip.Prefix{}, fmt.Errorf("%s is outside the subnets of network %s", addr, np.name)
	}
	np.touched = true
	if err := sp.pool.AllocateSpecific(addr, now, policy); err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(addr, sp.prefix.Bits()), nil
}

// release frees addr; it starts cooling down.
func (np *netPools) release(addr netip.Addr, now time.Time) error {
	sp := np.subnetOf(addr)
	if sp == nil {
		return fmt.Errorf("%s is outside the subnets of network %s", addr, np.name)
	}
	np.touched = true
	return sp.pool.Release(addr, now)
}

// records is the network's allocation record as the pools stand.
func (np *netPools) records() []*api.SubnetAllocation {
	out := make([]*api.SubnetAllocation, 0, len(np.subnets))
	for _, sp := range np.subnets {
		rec := &api.SubnetAllocation{Subnet: sp.prefix.String()}
		if last := sp.pool.Last(); last.IsValid() {
			rec.Last = last.String()
		}
		for _, r := range sp.pool.CoolingAddrs() {
			rec.Cooling = append(rec.Cooling, &api.ReleasedAddress{Address: r.Addr.String(), ReleasedAt: timestamppb.New(r.At)})
		}
		out = append(out, rec)
	}
	return out
}

// restore puts the pools in the state the records describe: allocated holds the bound addresses
// of each subnet (by index), recs the network's allocation record. It returns what it had to
// leave out, each a sentence, and the latest release time it read.
func (np *netPools) restore(allocated [][]netip.Addr, recs []*api.SubnetAllocation) (problems []string, latest time.Time) {
	for i, sp := range np.subnets {
		st := ipam.State{Allocated: allocated[i]}
		var rec *api.SubnetAllocation
		if i < len(recs) {
			rec = recs[i]
		}
		if rec != nil && rec.GetSubnet() != sp.prefix.String() {
			problems = append(problems, fmt.Sprintf("network %s: allocation record %d is for subnet %s, not %s; its cursor and cooldowns are dropped",
				np.name, i, rec.GetSubnet(), sp.prefix))
			rec = nil
		}
		if rec != nil {
			if rec.GetLast() != "" {
				if a, err := netip.ParseAddr(rec.GetLast()); err == nil {
					st.Last = a
				} else {
					problems = append(problems, fmt.Sprintf("network %s subnet %s: cursor %q: %v", np.name, sp.prefix, rec.GetLast(), err))
				}
			}
			for _, c := range rec.GetCooling() {
				a, err := netip.ParseAddr(c.GetAddress())
				if err != nil {
					problems = append(problems, fmt.Sprintf("network %s subnet %s: cooling address %q: %v", np.name, sp.prefix, c.GetAddress(), err))
					continue
				}
				at := c.GetReleasedAt().AsTime()
				if at.After(latest) {
					latest = at
				}
				st.Cooling = append(st.Cooling, ipam.Released{Addr: a, At: at})
			}
		}
		if err := sp.pool.Restore(st); err != nil {
			problems = append(problems, fmt.Sprintf("network %s subnet %s: %v; restored without its cursor and cooldowns", np.name, sp.prefix, err))
			if err := sp.pool.Restore(ipam.State{Allocated: st.Allocated}); err != nil {
				// The bindings were checked one by one against the pool before; this cannot
				// happen, but if it does the pool stays empty and says so.
				problems = append(problems, fmt.Sprintf("network %s subnet %s: %v; pool left empty", np.name, sp.prefix, err))
			}
		}
	}
	return problems, latest
}
