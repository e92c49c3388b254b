package cni

// This file owns adding a task's attachments (AttachTask, with rollback of a
// partial attach) and checking them (CheckTask): what each plugin chain is given
// for a task — interface name, CNI_ARGS and the ips/mac capability arguments.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/shoal/shoal/api"
)

const (
	// capIPs and capMAC are the capabilities shoal-bridge declares; their
	// arguments reach it as runtimeConfig.ips and runtimeConfig.mac.
	capIPs = "ips"
	capMAC = "mac"
	// CNI_ARGS keys naming the task an attachment belongs to.
	argTask    = "SHOAL_TASK"
	argService = "SHOAL_SERVICE"
	argSlot    = "SHOAL_SLOT"
	// rollbackTimeout bounds undoing a failed attach, which runs even when the
	// attach's ctx is done.
	rollbackTimeout = time.Minute
)

var (
	// ErrUnknownNetwork: a task attaches to a network SetNetworks has not
	// given.
	ErrUnknownNetwork = errors.New("not known to this node")
	// ErrNotAttached: CheckTask found no cached attachment for one of the
	// task's networks.
	ErrNotAttached = errors.New("not attached")
)

// IfName is the name of the interface of a task's i-th network inside its
// sandbox.
func IfName(i int) string { return "eth" + strconv.Itoa(i) }

// attachment is one network of a task, ready for libcni.
type attachment struct {
	networkID string
	address   string
	list      *libcni.NetworkConfigList
	rt        *libcni.RuntimeConf
}

// AttachTask ADDs the sandbox to each of t's networks, the i-th as interface
// eth<i>, with the task's address of that network. An attachment the cache
// already holds with the same address is kept as is (a repeated call). When an
// ADD fails, the attachments this call made, and the failed one, are deleted
// again, and the error names the network and carries the plugin's error.
func (m *Manager) AttachTask(ctx context.Context, sandboxID, netns string, t *api.Task) error {
	if sandboxID == "" || netns == "" {
		return fmt.Errorf("attach task %s: sandbox ID (%q) and netns (%q) are required", t.GetId(), sandboxID, netns)
	}
	plan, err := m.planAttach(sandboxID, netns, t)
	if err != nil {
		return err
	}

	m.gcMu.RLock()
	defer m.gcMu.RUnlock()
	cached, err := m.cachedBySandbox(sandboxID)
	if err != nil {
		return fmt.Errorf("attach task %s: %w", t.GetId(), err)
	}
	var added []attachment
	for _, a := range plan {
		if c, ok := cached[cacheKey{a.networkID, a.rt.IfName}]; ok {
			if got := cachedAddress(c); !sameAddress(got, a.address) {
				err := fmt.Errorf("attach task %s: sandbox %s already has network %s as %s with address %q, not %q",
					t.GetId(), sandboxID, a.networkID, a.rt.IfName, got, a.address)
				return errors.Join(err, m.rollback(ctx, added))
			}
			m.log.Debug("attachment already cached", "task", t.GetId(), "sandbox", sandboxID, "network", a.networkID, "ifname", a.rt.IfName)
			continue
		}
		if _, err := m.cni.AddNetworkList(ctx, a.list, a.rt); err != nil {
			err = fmt.Errorf("attach task %s to network %s (%s in sandbox %s): %w", t.GetId(), a.networkID, a.rt.IfName, sandboxID, err)
			return errors.Join(err, m.rollback(ctx, append(added, a)))
		}
		added = append(added, a)
		m.log.Info("attached", "task", t.GetId(), "sandbox", sandboxID, "network", a.networkID, "ifname", a.rt.IfName, "address", a.address)
	}
	return nil
}

// planAttach prepares every attachment of t before any is made, so that bad
// input changes nothing.
func (m *Manager) planAttach(sandboxID, netns string, t *api.Task) ([]attachment, error) {
	args, err := taskArgs(t)
	if err != nil {
		return nil, err
	}
	plan := make([]attachment, 0, len(t.GetNetworks()))
	for i, na := range t.GetNetworks() {
		n := m.network(na.GetNetworkId())
		if n == nil {
			return nil, fmt.Errorf("network %s of task %s is %w", na.GetNetworkId(), t.GetId(), ErrUnknownNetwork)
		}
		list, err := m.confListOf(n)
		if err != nil {
			return nil, fmt.Errorf("attach task %s: %w", t.GetId(), err)
		}
		mac, err := MACOf(na.GetAddress())
		if err != nil {
			return nil, fmt.Errorf("attach task %s: network %s: address: %w", t.GetId(), na.GetNetworkId(), err)
		}
		plan = append(plan, attachment{
			networkID: na.GetNetworkId(),
			address:   na.GetAddress(),
			list:      list,
			rt: &libcni.RuntimeConf{
				ContainerID:    sandboxID,
				NetNS:          netns,
				IfName:         IfName(i),
				Args:           args,
				CapabilityArgs: map[string]any{capIPs: []string{na.GetAddress()}, capMAC: mac.String()},
			},
		})
	}
	return plan, nil
}

// taskArgs are the CNI_ARGS of t's attachments. IgnoreUnknown lets plugins
// that do not know shoal's keys accept them.
func taskArgs(t *api.Task) ([][2]string, error) {
	if t.GetId() == "" {
		return nil, errors.New("attach task: the task has no ID")
	}
	args := [][2]string{
		{"IgnoreUnknown", "1"},
		{argTask, t.GetId()},
		{argService, t.GetServiceName()},
		{argSlot, strconv.FormatUint(t.GetSlot(), 10)},
	}
	for _, kv := range args {
		if strings.ContainsAny(kv[1], ";=") {
			return nil, fmt.Errorf("attach task %s: %s %q holds ';' or '=', which CNI_ARGS cannot carry", t.GetId(), kv[0], kv[1])
		}
	}
	return args, nil
}

// rollback DELs attachments in reverse order, even when ctx is done (it often
// is when an ADD fails), within rollbackTimeout.
func (m *Manager) rollback(ctx context.Context, added []attachment) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	var errs []error
	for i := len(added) - 1; i >= 0; i-- {
		a := added[i]
		if err := m.cni.DelNetworkList(ctx, a.list, a.rt); err != nil {
			errs = append(errs, fmt.Errorf("roll back network %s (%s in sandbox %s): %w", a.networkID, a.rt.IfName, a.rt.ContainerID, err))
			continue
		}
		m.log.Info("rolled back attachment", "sandbox", a.rt.ContainerID, "network", a.networkID, "ifname", a.rt.IfName)
	}
	return errors.Join(errs...)
}

// CheckTask CHECKs each of t's attachments in the sandbox, with the
// configuration and arguments libcni cached when it was added, and that it
// holds the task's address. All failures are reported, joined.
func (m *Manager) CheckTask(ctx context.Context, sandboxID, netns string, t *api.Task) error {
	cached, err := m.cachedBySandbox(sandboxID)
	if err != nil {
		return fmt.Errorf("check task %s: %w", t.GetId(), err)
	}
	var errs []error
	for i, na := range t.GetNetworks() {
		key := cacheKey{na.GetNetworkId(), IfName(i)}
		c, ok := cached[key]
		if !ok {
			errs = append(errs, fmt.Errorf("check task %s: network %s (%s in sandbox %s): %w", t.GetId(), key.network, key.ifName, sandboxID, ErrNotAttached))
			continue
		}
		if err := m.checkCached(ctx, c, netns, na.GetAddress()); err != nil {
			errs = append(errs, fmt.Errorf("check task %s: network %s (%s in sandbox %s): %w", t.GetId(), key.network, key.ifName, sandboxID, err))
		}
	}
	return errors.Join(errs...)
}

// checkCached CHECKs one cached attachment, expected to hold address.
func (m *Manager) checkCached(ctx context.Context, c *libcni.NetworkAttachment, netns, address string) error {
	if got := cachedAddress(c); !sameAddress(got, address) {
		return fmt.Errorf("attached with address %q, the task has %q", got, address)
	}
	list, err := libcni.ConfListFromBytes(c.Config)
	if err != nil {
		return fmt.Errorf("parse cached conflist: %w", err)
	}
	return m.cni.CheckNetworkList(ctx, list, runtimeConfOf(c, netns))
}

// sameAddress reports whether two "addr/len" strings name the same prefix.
func sameAddress(a, b string) bool {
	pa, errA := netip.ParsePrefix(a)
	pb, errB := netip.ParsePrefix(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return pa == pb
}
