// This file owns receive offload on the links a network's traffic arrives on.

package overlay

import (
	"fmt"

	"github.com/safchain/ethtool"
)

// EnableGRO turns on generic receive offload on the named link of the calling thread's network
// namespace. On a veth it also gives the receiving end a NAPI poll loop (Linux 5.13 and later), so
// segments that arrive one by one, such as TCP decapsulated from VXLAN, are merged before the
// stack sees them, as a physical NIC's driver merges them. A veth's end has it off by default.
func EnableGRO(link string) error {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("turn on GRO on %s: open ethtool socket: %w", link, err)
	}
	defer e.Close()
	if err := e.Change(link, map[string]bool{"rx-gro": true}); err != nil {
		return fmt.Errorf("turn on GRO on %s: %w", link, err)
	}
	// The kernel may decline a feature and still answer the request without an error.
	f, err := e.Features(link)
	if err != nil {
		return fmt.Errorf("turn on GRO on %s: read its features back: %w", link, err)
	}
	if !f["rx-gro"] {
		return fmt.Errorf("turn on GRO on %s: the kernel left it off", link)
	}
	return nil
}

// GROEnabled reports whether generic receive offload is on for the named link of the calling
// thread's network namespace.
func GROEnabled(link string) (bool, error) {
	e, err := ethtool.NewEthtool()
	if err != nil {
		return false, fmt.Errorf("read features of %s: open ethtool socket: %w", link, err)
	}
	defer e.Close()
	f, err := e.Features(link)
	if err != nil {
		return false, fmt.Errorf("read features of %s: %w", link, err)
	}
	return f["rx-gro"], nil
}
