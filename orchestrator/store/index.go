package store

// This file owns the secondary indexes: tasks by service and by node,
// bindings by service and by address. The reconcilers, the scheduler and the
// dispatcher read a service's or a node's tasks on every change, and the
// binding check looks an address up on every binding written; without an
// index each read would walk every object of its kind in the cluster.

import (
	"strings"

	"github.com/shoal/shoal/api"
)

// index names a secondary index.
type index string

const (
	indexTaskService index = "task.service"
	indexTaskNode    index = "task.node"
	indexBindingSvc  index = "binding.service"
	indexBindingAddr index = "binding.address"
)

// indexedFields says, for an object, under which key of which index it is
// filed. An empty key files nothing.
func indexedFields(o Object) map[index]string {
	switch t := o.(type) {
	case *api.Task:
		return map[index]string{indexTaskService: t.ServiceId, indexTaskNode: t.NodeId}
	case *api.IPBinding:
		return map[index]string{indexBindingSvc: t.ServiceId, indexBindingAddr: BindingAddressKey(t.NetworkId, t.Address)}
	}
	return nil
}

// BindingAddressKey is the key bindings are filed under by address: the
// network and the address without its prefix length; "" (filed nowhere)
// for a binding with no address.
func BindingAddressKey(networkID, address string) string {
	if address == "" {
		return ""
	}
	if i := strings.IndexByte(address, '/'); i >= 0 {
		address = address[:i]
	}
	return networkID + " " + address
}

// indexes maps index → key → set of object IDs; s.mu guards it.
type indexes map[index]map[string]map[string]struct{}

func (ix indexes) add(o Object) {
	for name, key := range indexedFields(o) {
		if key == "" {
			continue
		}
		byKey := ix[name]
		if byKey == nil {
			byKey = make(map[string]map[string]struct{})
			ix[name] = byKey
		}
		ids := byKey[key]
		if ids == nil {
			ids = make(map[string]struct{})
			byKey[key] = ids
		}
		ids[o.GetId()] = struct{}{}
	}
}

func (ix indexes) remove(o Object) {
	for name, key := range indexedFields(o) {
		ids := ix[name][key]
		delete(ids, o.GetId())
		if len(ids) == 0 {
			delete(ix[name], key)
		}
	}
}

// lookup returns copies of the objects of kind k filed under key.
func lookup[T Object](s *MemoryStore, k Kind, name index, key string) []T {
	out := lookupShared[T](s, k, name, key)
	for i, o := range out {
		out[i] = clone(o)
	}
	return out
}

// lookupShared returns the store's own objects of kind k filed under key,
// sorted by ID; the caller must not change them.
func lookupShared[T Object](s *MemoryStore, k Kind, name index, key string) []T {
	ids := s.index[name][key]
	out := make([]T, 0, len(ids))
	for id := range ids {
		out = append(out, s.tables[k][id].(T))
	}
	sortByID(out)
	return out
}
