package cni

// This file owns reading libcni's attachment cache: which attachments a sandbox
// has, and the runtime arguments and address each was added with.

import (
	"fmt"

	"github.com/containernetworking/cni/libcni"
)

// cacheKey identifies an attachment of one sandbox.
type cacheKey struct {
	network string // the network's ID, the conflist's name
	ifName  string
}

// cachedBySandbox returns the cached attachments of the sandbox.
func (m *Manager) cachedBySandbox(sandboxID string) (map[cacheKey]*libcni.NetworkAttachment, error) {
	if sandboxID == "" {
		return nil, fmt.Errorf("read cached attachments: no sandbox ID")
	}
	atts, err := m.cni.GetCachedAttachments(sandboxID)
	if err != nil {
		return nil, fmt.Errorf("read cached attachments of sandbox %s: %w", sandboxID, err)
	}
	byKey := make(map[cacheKey]*libcni.NetworkAttachment, len(atts))
	for _, a := range atts {
		byKey[cacheKey{a.Network, a.IfName}] = a
	}
	return byKey, nil
}

// cachedAddress is the address an attachment was added with (its "ips"
// capability argument), or "" when it has none or several.
func cachedAddress(a *libcni.NetworkAttachment) string {
	// Read back from JSON, the argument is a []any of strings.
	ips, _ := a.CapabilityArgs[capIPs].([]any)
	if len(ips) != 1 {
		return ""
	}
	s, _ := ips[0].(string)
	return s
}

// runtimeConfOf is the runtime configuration of a cached attachment, in the
// given netns ("" when the namespace is gone).
func runtimeConfOf(a *libcni.NetworkAttachment, netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    a.ContainerID,
		NetNS:          netns,
		IfName:         a.IfName,
		Args:           a.CniArgs,
		CapabilityArgs: a.CapabilityArgs,
	}
}
