package allocator

// This file owns binding keys: what a binding is the address of, the record ID derived from it,
// and the key a task's address on a network belongs to.

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"strconv"

	"github.com/shoal/shoal/api"
)

// Key names a binding: a replicated service's slot, a global service's node, or a service's VIP,
// on one network.
type Key struct {
	Service string
	Network string
	Kind    api.IPBinding_Kind
	Slot    uint64 // KIND_SLOT
	Node    string // KIND_NODE
}

// String is the key as the state dump and log lines write it.
func (k Key) String() string {
	switch k.Kind {
	case api.IPBinding_KIND_SLOT:
		return k.Service + "/" + k.Network + "/slot/" + strconv.FormatUint(k.Slot, 10)
	case api.IPBinding_KIND_NODE:
		return k.Service + "/" + k.Network + "/node/" + k.Node
	}
	return k.Service + "/" + k.Network + "/vip"
}

// compareKeys orders keys by service, network, kind, slot and node: the order rounds write in.
func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Network, b.Network),
		cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.Node, b.Node))
}

// BindingID is the ID of k's record. It derives from the key, so two writers racing to create one
// key's binding (an old leader and a new one) cannot make two records: the second create fails.
func BindingID(k Key) string {
	sum := sha256.Sum256([]byte(k.String()))
	return api.Base36(sum[:16], 25)
}

// KeyOf is the key of a binding record.
func KeyOf(b *api.IPBinding) Key {
	return Key{Service: b.GetServiceId(), Network: b.GetNetworkId(), Kind: b.GetKind(), Slot: b.GetSlot(), Node: b.GetNodeId()}
}

// TaskKey is the key of the binding t takes its address on network from: its slot's, or for a
// global service's task (slot 0) its node's.
func TaskKey(t *api.Task, network string) Key {
	if t.GetSlot() == 0 {
		return Key{Service: t.GetServiceId(), Network: network, Kind: api.IPBinding_KIND_NODE, Node: t.GetNodeId()}
	}
	return Key{Service: t.GetServiceId(), Network: network, Kind: api.IPBinding_KIND_SLOT, Slot: t.GetSlot()}
}

// VIPKey is the key of service's virtual IP on network.
func VIPKey(service, network string) Key {
	return Key{Service: service, Network: network, Kind: api.IPBinding_KIND_VIP}
}

// describe says what k is, for status messages: "slot 3", "node n1", "the VIP".
func (k Key) describe() string {
	switch k.Kind {
	case api.IPBinding_KIND_SLOT:
		return fmt.Sprintf("slot %d", k.Slot)
	case api.IPBinding_KIND_NODE:
		return "node " + k.Node
	}
	return "the VIP"
}
