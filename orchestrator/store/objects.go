package store

// This file owns the list of object kinds the store holds and the mapping
// between an object and the oneof target of a StoreAction. Adding a kind
// means adding it to kinds, kindOf, actionObject, newAction, setMeta
// (memory.go), the snapshot (snapshot.go), and, when it is looked up by a
// field, an index (index.go).

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// Object is anything the store holds.
type Object interface {
	proto.Message
	GetId() string
	GetMeta() *api.Meta
}

// Kind names a table of the store.
type Kind string

// The kinds of object the store holds.
const (
	KindNode    Kind = "node"
	KindCluster Kind = "cluster"
	KindService Kind = "service"
	KindTask    Kind = "task"
	KindNetwork Kind = "network"
	KindBinding Kind = "binding"
)

// kinds lists every table, in the order snapshots and restores walk them.
var kinds = []Kind{KindCluster, KindNode, KindNetwork, KindService, KindTask, KindBinding}

// kindOf says which table an object belongs to.
func kindOf(o Object) (Kind, error) {
	switch o.(type) {
	case *api.Node:
		return KindNode, nil
	case *api.Cluster:
		return KindCluster, nil
	case *api.Service:
		return KindService, nil
	case *api.Task:
		return KindTask, nil
	case *api.Network:
		return KindNetwork, nil
	case *api.IPBinding:
		return KindBinding, nil
	}
	return "", fmt.Errorf("%w: the store holds no %T", ErrInvalidObject, o)
}

// actionObject returns the object a StoreAction carries.
func actionObject(a *api.StoreAction) (Object, error) {
	switch t := a.GetTarget().(type) {
	case *api.StoreAction_Node:
		return t.Node, nil
	case *api.StoreAction_Cluster:
		return t.Cluster, nil
	case *api.StoreAction_Service:
		return t.Service, nil
	case *api.StoreAction_Task:
		return t.Task, nil
	case *api.StoreAction_Network:
		return t.Network, nil
	case *api.StoreAction_Binding:
		return t.Binding, nil
	}
	return nil, fmt.Errorf("%w: store action without a known target", ErrInvalidObject)
}

// newAction wraps an object into a StoreAction.
func newAction(kind api.StoreAction_Kind, o Object, expectedVersion uint64) (*api.StoreAction, error) {
	a := &api.StoreAction{Kind: kind, ExpectedVersion: expectedVersion}
	switch t := o.(type) {
	case *api.Node:
		a.Target = &api.StoreAction_Node{Node: t}
	case *api.Cluster:
		a.Target = &api.StoreAction_Cluster{Cluster: t}
	case *api.Service:
		a.Target = &api.StoreAction_Service{Service: t}
	case *api.Task:
		a.Target = &api.StoreAction_Task{Task: t}
	case *api.Network:
		a.Target = &api.StoreAction_Network{Network: t}
	case *api.IPBinding:
		a.Target = &api.StoreAction_Binding{Binding: t}
	default:
		return nil, fmt.Errorf("%w: the store holds no %T", ErrInvalidObject, o)
	}
	return a, nil
}

// version returns an object's version, zero when it has no meta yet.
func version(o Object) uint64 {
	return o.GetMeta().GetVersion()
}

func clone[T Object](o T) T {
	return proto.Clone(o).(T)
}

// sortByID orders objs by ID. The IDs are read once, not at every comparison: lists of 100,000
// tasks are sorted on every leader takeover.
func sortByID[T Object](objs []T) {
	type keyed struct {
		id  string
		obj T
	}
	ks := make([]keyed, len(objs))
	for i, o := range objs {
		ks[i] = keyed{o.GetId(), o}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return strings.Compare(a.id, b.id) })
	for i := range ks {
		objs[i] = ks[i].obj
	}
}
