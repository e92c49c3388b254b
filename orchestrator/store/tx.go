package store

// This file owns transactions: ReadTx for reads and Tx, which stages
// creates, updates and deletes on top of the current state and turns them
// into one StoreTransaction for raft.

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// ReadTx reads the store. Objects it returns are copies the caller owns.
type ReadTx interface {
	Node(id string) *api.Node
	Nodes() []*api.Node
	Cluster(id string) *api.Cluster
	Clusters() []*api.Cluster
	Service(id string) *api.Service
	Services() []*api.Service
	Task(id string) *api.Task
	Tasks() []*api.Task
	// TasksByService and TasksByNode read through an index.
	TasksByService(serviceID string) []*api.Task
	TasksByNode(nodeID string) []*api.Task
	// SharedTasksByService is TasksByService without the copies, for the
	// hot paths that read every task of a large service on each change:
	// the tasks are the store's own and must never be changed (the store
	// replaces an object on every write, so holding one is safe; change a
	// proto.Clone of it).
	SharedTasksByService(serviceID string) []*api.Task
	// SharedTasks is Tasks without the copies, for the leader components'
	// first read of every task; the rules of SharedTasksByService apply.
	SharedTasks() []*api.Task
	Network(id string) *api.Network
	Networks() []*api.Network
	Binding(id string) *api.IPBinding
	Bindings() []*api.IPBinding
	// BindingsByService and BindingsByAddress read through an index; the
	// address is matched without its prefix length.
	BindingsByService(serviceID string) []*api.IPBinding
	BindingsByAddress(networkID, address string) []*api.IPBinding
	// SharedBindings and SharedBindingsByService are Bindings and
	// BindingsByService without the copies, for the allocator's reads of
	// every binding; the rules of SharedTasksByService apply.
	SharedBindings() []*api.IPBinding
	SharedBindingsByService(serviceID string) []*api.IPBinding
	// Version is the raft index of the last transaction the state read
	// reflects.
	Version() uint64
}

// Tx reads the store, its own staged changes included, and stages changes.
type Tx interface {
	ReadTx
	// Create stages a new object; its ID must be unused.
	Create(o Object) error
	// Update stages a new version of an existing object. The object's
	// meta.version must be the one it was read at.
	Update(o Object) error
	// Delete stages the removal of an existing object, read at the version
	// o carries.
	Delete(o Object) error
}

type readTx struct {
	s *MemoryStore
}

func (r *readTx) Node(id string) *api.Node       { return get[*api.Node](r.s, KindNode, id) }
func (r *readTx) Nodes() []*api.Node             { return list[*api.Node](r.s, KindNode) }
func (r *readTx) Cluster(id string) *api.Cluster { return get[*api.Cluster](r.s, KindCluster, id) }
func (r *readTx) Clusters() []*api.Cluster       { return list[*api.Cluster](r.s, KindCluster) }
func (r *readTx) Service(id string) *api.Service { return get[*api.Service](r.s, KindService, id) }
func (r *readTx) Services() []*api.Service       { return list[*api.Service](r.s, KindService) }
func (r *readTx) Task(id string) *api.Task       { return get[*api.Task](r.s, KindTask, id) }
func (r *readTx) Tasks() []*api.Task             { return list[*api.Task](r.s, KindTask) }
func (r *readTx) TasksByService(id string) []*api.Task {
	return lookup[*api.Task](r.s, KindTask, indexTaskService, id)
}
func (r *readTx) TasksByNode(id string) []*api.Task {
	return lookup[*api.Task](r.s, KindTask, indexTaskNode, id)
}
func (r *readTx) Network(id string) *api.Network   { return get[*api.Network](r.s, KindNetwork, id) }
func (r *readTx) Networks() []*api.Network         { return list[*api.Network](r.s, KindNetwork) }
func (r *readTx) Version() uint64                  { return r.s.applied }
func (r *readTx) Binding(id string) *api.IPBinding { return get[*api.IPBinding](r.s, KindBinding, id) }
func (r *readTx) Bindings() []*api.IPBinding       { return list[*api.IPBinding](r.s, KindBinding) }
func (r *readTx) BindingsByService(id string) []*api.IPBinding {
	return lookup[*api.IPBinding](r.s, KindBinding, indexBindingSvc, id)
}
func (r *readTx) BindingsByAddress(networkID, address string) []*api.IPBinding {
	key := BindingAddressKey(networkID, address)
	if key == "" {
		return nil
	}
	return lookup[*api.IPBinding](r.s, KindBinding, indexBindingAddr, key)
}
func (r *readTx) SharedBindings() []*api.IPBinding {
	return listShared[*api.IPBinding](r.s, KindBinding)
}
func (r *readTx) SharedTasks() []*api.Task { return listShared[*api.Task](r.s, KindTask) }
func (r *readTx) SharedBindingsByService(id string) []*api.IPBinding {
	return lookupShared[*api.IPBinding](r.s, KindBinding, indexBindingSvc, id)
}
func (r *readTx) SharedTasksByService(id string) []*api.Task {
	return lookupShared[*api.Task](r.s, KindTask, indexTaskService, id)
}

func get[T Object](s *MemoryStore, k Kind, id string) T {
	var zero T
	o, ok := s.tables[k][id]
	if !ok {
		return zero
	}
	return clone(o.(T))
}

// listShared is list without the copies (see SharedTasksByService).
func listShared[T Object](s *MemoryStore, k Kind) []T {
	out := make([]T, 0, len(s.tables[k]))
	for _, o := range s.tables[k] {
		out = append(out, o.(T))
	}
	sortByID(out)
	return out
}

func list[T Object](s *MemoryStore, k Kind) []T {
	out := make([]T, 0, len(s.tables[k]))
	for _, o := range s.tables[k] {
		out = append(out, clone(o.(T)))
	}
	sortByID(out)
	return out
}

// staged is one object's pending change inside a transaction.
type staged struct {
	action          api.StoreAction_Kind
	object          Object
	expectedVersion uint64
}

type tx struct {
	readTx
	now     time.Time
	changes map[Kind]map[string]*staged
	order   []stagedKey
	// bindingAddrs is stagedBindingsByAddress's index; nil until used
	// and after each stage.
	bindingAddrs map[string][]string
}

type stagedKey struct {
	kind Kind
	id   string
}

func newTx(s *MemoryStore, now time.Time) *tx {
	return &tx{readTx: readTx{s: s}, now: now, changes: make(map[Kind]map[string]*staged)}
}

func (t *tx) Node(id string) *api.Node {
	if o, ok := t.stagedObject(KindNode, id); ok {
		n, _ := o.(*api.Node)
		return n
	}
	return t.readTx.Node(id)
}

func (t *tx) Nodes() []*api.Node { return mergeStaged(t, KindNode, t.readTx.Nodes(), nil) }

func (t *tx) Cluster(id string) *api.Cluster {
	if o, ok := t.stagedObject(KindCluster, id); ok {
		c, _ := o.(*api.Cluster)
		return c
	}
	return t.readTx.Cluster(id)
}

func (t *tx) Clusters() []*api.Cluster { return mergeStaged(t, KindCluster, t.readTx.Clusters(), nil) }

func (t *tx) Service(id string) *api.Service { return stagedGet(t, KindService, id, t.readTx.Service) }

func (t *tx) Services() []*api.Service { return mergeStaged(t, KindService, t.readTx.Services(), nil) }

func (t *tx) Task(id string) *api.Task { return stagedGet(t, KindTask, id, t.readTx.Task) }

func (t *tx) Tasks() []*api.Task { return mergeStaged(t, KindTask, t.readTx.Tasks(), nil) }

func (t *tx) TasksByService(id string) []*api.Task {
	return mergeStaged(t, KindTask, t.readTx.TasksByService(id), func(x *api.Task) bool { return x.ServiceId == id })
}

func (t *tx) Network(id string) *api.Network { return stagedGet(t, KindNetwork, id, t.readTx.Network) }

func (t *tx) Networks() []*api.Network { return mergeStaged(t, KindNetwork, t.readTx.Networks(), nil) }

func (t *tx) Binding(id string) *api.IPBinding {
	return stagedGet(t, KindBinding, id, t.readTx.Binding)
}

func (t *tx) Bindings() []*api.IPBinding {
	return mergeStaged(t, KindBinding, t.readTx.Bindings(), nil)
}

func (t *tx) BindingsByService(id string) []*api.IPBinding {
	return mergeStaged(t, KindBinding, t.readTx.BindingsByService(id), func(x *api.IPBinding) bool { return x.ServiceId == id })
}

func (t *tx) BindingsByAddress(networkID, address string) []*api.IPBinding {
	base := t.readTx.BindingsByAddress(networkID, address)
	staged := t.changes[KindBinding]
	if len(staged) == 0 {
		return base
	}
	out := base[:0]
	for _, b := range base {
		if _, ok := staged[b.Id]; !ok {
			out = append(out, b)
		}
	}
	for _, id := range t.stagedBindingsByAddress()[BindingAddressKey(networkID, address)] {
		if o, _ := t.stagedObject(KindBinding, id); o != nil {
			out = append(out, o.(*api.IPBinding))
		}
	}
	sortByID(out)
	return out
}

// stagedBindingsByAddress files the staged bindings by address, as the
// store's index files the committed ones; built on first use after each
// stage, so the store check that looks up every binding a transaction
// writes costs one pass over them, not one per binding.
func (t *tx) stagedBindingsByAddress() map[string][]string {
	if t.bindingAddrs == nil {
		t.bindingAddrs = make(map[string][]string)
		for id, st := range t.changes[KindBinding] {
			if b, ok := st.object.(*api.IPBinding); ok && st.action != api.StoreAction_KIND_DELETE {
				if key := BindingAddressKey(b.NetworkId, b.Address); key != "" {
					t.bindingAddrs[key] = append(t.bindingAddrs[key], id)
				}
			}
		}
	}
	return t.bindingAddrs
}

func (t *tx) SharedBindings() []*api.IPBinding {
	return mergeStaged(t, KindBinding, t.readTx.SharedBindings(), nil)
}

func (t *tx) SharedBindingsByService(id string) []*api.IPBinding {
	return mergeStaged(t, KindBinding, t.readTx.SharedBindingsByService(id), func(x *api.IPBinding) bool { return x.ServiceId == id })
}

func (t *tx) SharedTasks() []*api.Task {
	return mergeStaged(t, KindTask, t.readTx.SharedTasks(), nil)
}

func (t *tx) SharedTasksByService(id string) []*api.Task {
	return mergeStaged(t, KindTask, t.readTx.SharedTasksByService(id), func(x *api.Task) bool { return x.ServiceId == id })
}

func (t *tx) TasksByNode(id string) []*api.Task {
	return mergeStaged(t, KindTask, t.readTx.TasksByNode(id), func(x *api.Task) bool { return x.NodeId == id })
}

// stagedGet reads one object through the transaction's staged changes.
func stagedGet[T Object](t *tx, k Kind, id string, base func(string) T) T {
	if o, ok := t.stagedObject(k, id); ok {
		v, _ := o.(T)
		return v
	}
	return base(id)
}

// stagedObject returns a copy of the staged state of an object; ok is false
// when the transaction has not touched it. A staged delete reads as nil.
func (t *tx) stagedObject(k Kind, id string) (Object, bool) {
	c, ok := t.changes[k][id]
	if !ok {
		return nil, false
	}
	if c.action == api.StoreAction_KIND_DELETE {
		return nil, true
	}
	return clone(c.object), true
}

// mergeStaged lays the transaction's staged changes of kind k over base.
// When match is set, base is a filtered list (an index lookup) and staged
// objects are kept only if they match.
func mergeStaged[T Object](t *tx, k Kind, base []T, match func(T) bool) []T {
	if len(t.changes[k]) == 0 {
		return base
	}
	keep := func(s Object) bool { return s != nil && (match == nil || match(s.(T))) }
	out := base[:0]
	seen := make(map[string]bool)
	for _, o := range base {
		seen[o.GetId()] = true
		if s, ok := t.stagedObject(k, o.GetId()); ok {
			if keep(s) {
				out = append(out, s.(T))
			}
			continue
		}
		out = append(out, o)
	}
	for id := range t.changes[k] {
		if seen[id] {
			continue
		}
		if s, _ := t.stagedObject(k, id); keep(s) {
			out = append(out, s.(T))
		}
	}
	sortByID(out)
	return out
}

func (t *tx) Create(o Object) error {
	k, err := t.validate(o)
	if err != nil {
		return err
	}
	id := o.GetId()
	if prev, ok := t.changes[k][id]; ok {
		if prev.action != api.StoreAction_KIND_DELETE {
			return fmt.Errorf("%w: %s %s", ErrExist, k, id)
		}
		// Delete then create of the same ID: an update of the original.
		prev.action = api.StoreAction_KIND_UPDATE
		prev.object = t.withMeta(o, prev.expectedVersion)
		return nil
	}
	if _, exists := t.s.tables[k][id]; exists {
		return fmt.Errorf("%w: %s %s", ErrExist, k, id)
	}
	t.stage(k, id, &staged{action: api.StoreAction_KIND_CREATE, object: t.withMeta(o, 0)})
	return nil
}

func (t *tx) Update(o Object) error {
	k, err := t.validate(o)
	if err != nil {
		return err
	}
	id := o.GetId()
	if prev, ok := t.changes[k][id]; ok {
		if prev.action == api.StoreAction_KIND_DELETE {
			return fmt.Errorf("%w: %s %s was deleted in this transaction", ErrNotFound, k, id)
		}
		prev.object = t.withMeta(o, version(prev.object))
		return nil
	}
	if _, exists := t.s.tables[k][id]; !exists {
		return fmt.Errorf("%w: %s %s", ErrNotFound, k, id)
	}
	t.stage(k, id, &staged{action: api.StoreAction_KIND_UPDATE, object: t.withMeta(o, version(o)), expectedVersion: version(o)})
	return nil
}

func (t *tx) Delete(o Object) error {
	k, err := t.validate(o)
	if err != nil {
		return err
	}
	id := o.GetId()
	if prev, ok := t.changes[k][id]; ok {
		switch prev.action {
		case api.StoreAction_KIND_CREATE:
			delete(t.changes[k], id)
			t.unorder(k, id)
		case api.StoreAction_KIND_UPDATE:
			prev.action = api.StoreAction_KIND_DELETE
		default:
			return fmt.Errorf("%w: %s %s was deleted in this transaction", ErrNotFound, k, id)
		}
		return nil
	}
	if _, exists := t.s.tables[k][id]; !exists {
		return fmt.Errorf("%w: %s %s", ErrNotFound, k, id)
	}
	t.stage(k, id, &staged{action: api.StoreAction_KIND_DELETE, object: clone(o), expectedVersion: version(o)})
	return nil
}

func (t *tx) validate(o Object) (Kind, error) {
	k, err := kindOf(o)
	if err != nil {
		return "", err
	}
	if o.GetId() == "" {
		return "", fmt.Errorf("%w: %s without an ID", ErrInvalidObject, k)
	}
	return k, nil
}

// withMeta copies o and stamps its meta with the transaction's time; the
// version stays the one it was read at until Apply sets the new one.
func (t *tx) withMeta(o Object, readVersion uint64) Object {
	c := clone(o)
	m := c.GetMeta()
	if m == nil {
		m = &api.Meta{}
		setMeta(c, m)
	}
	m.Version = readVersion
	m.UpdatedAt = stamp(t.now)
	if readVersion == 0 && m.CreatedAt == nil {
		m.CreatedAt = stamp(t.now)
	}
	return c
}

func (t *tx) stage(k Kind, id string, s *staged) {
	if t.changes[k] == nil {
		t.changes[k] = make(map[string]*staged)
	}
	t.changes[k][id] = s
	t.order = append(t.order, stagedKey{k, id})
	if k == KindBinding {
		t.bindingAddrs = nil
	}
}

func (t *tx) unorder(k Kind, id string) {
	for i, key := range t.order {
		if key.kind == k && key.id == id {
			t.order = append(t.order[:i], t.order[i+1:]...)
			return
		}
	}
}

// payload encodes the staged changes, in the order they were first made, as
// one StoreTransaction; nil when nothing was staged.
func (t *tx) payload() ([]byte, error) {
	if len(t.order) == 0 {
		return nil, nil
	}
	txn := &api.StoreTransaction{Actions: make([]*api.StoreAction, 0, len(t.order)), ChecksVersion: ChecksVersion}
	for _, key := range t.order {
		c := t.changes[key.kind][key.id]
		a, err := newAction(c.action, c.object, c.expectedVersion)
		if err != nil {
			return nil, err
		}
		txn.Actions = append(txn.Actions, a)
	}
	return proto.Marshal(txn)
}
