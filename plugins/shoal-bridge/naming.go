// This file derives the names and addresses an attachment gets without being
// told: the host veth name, which DEL and GC recompute from (containerID,
// ifname) alone, and the container MAC when the runtime passes none.

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// hostVethPrefix marks the host ends shoal-bridge creates; GC deletes only
// bridge ports with this prefix, never other ports (an overlay's VXLAN device).
const hostVethPrefix = "shv"

// hostVethName is the host end's name for the attachment (containerID,
// ifName): "shv" and 10 hex digits of sha256("containerID/ifName"), 13
// characters, within the kernel's 15.
func hostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return hostVethPrefix + hex.EncodeToString(sum[:])[:10]
}

// isHostVethName reports whether name has the shape of hostVethName's names.
func isHostVethName(name string) bool {
	if len(name) != len(hostVethPrefix)+10 || !strings.HasPrefix(name, hostVethPrefix) {
		return false
	}
	_, err := hex.DecodeString(name[len(hostVethPrefix):])
	return err == nil
}

// macFromIPv4 derives the container MAC from the first IPv4 address the way
// Docker does, 02:42 and the address's four bytes, so that a task keeps its
// MAC wherever its sticky address goes. It returns nil without IPv4 address,
// leaving the choice to the kernel.
func macFromIPv4(ips []*current.IPConfig) net.HardwareAddr {
	for _, ip := range ips {
		if v4 := ip.Address.IP.To4(); v4 != nil {
			return net.HardwareAddr{0x02, 0x42, v4[0], v4[1], v4[2], v4[3]}
		}
	}
	return nil
}
