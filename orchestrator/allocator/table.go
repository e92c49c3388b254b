package allocator

// This file owns bindingTable, the allocator's bindings in memory.

// bindingTable holds the bindings by service, then by key: a service's round walks its own
// bindings, and a rebuild fills one map per service, with no second index to keep in step.
type bindingTable struct {
	bySvc map[string]map[Key]*binding
	n     int
}

func newBindingTable() bindingTable {
	return bindingTable{bySvc: make(map[string]map[Key]*binding)}
}

// get is k's binding, or nil.
func (t *bindingTable) get(k Key) *binding { return t.bySvc[k.Service][k] }

// reserve makes room for n bindings of service; a rebuild knows how many each service has.
func (t *bindingTable) reserve(service string, n int) {
	if t.bySvc[service] == nil {
		t.bySvc[service] = make(map[Key]*binding, n)
	}
}

// put records b as k's binding, replacing any.
func (t *bindingTable) put(k Key, b *binding) {
	m := t.bySvc[k.Service]
	if m == nil {
		m = make(map[Key]*binding)
		t.bySvc[k.Service] = m
	}
	if _, had := m[k]; !had {
		t.n++
	}
	m[k] = b
}

// remove forgets k's binding.
func (t *bindingTable) remove(k Key) {
	m := t.bySvc[k.Service]
	if _, had := m[k]; !had {
		return
	}
	delete(m, k)
	t.n--
	if len(m) == 0 {
		delete(t.bySvc, k.Service)
	}
}

// service is the bindings of one service, by key; the caller does not change the map.
func (t *bindingTable) service(id string) map[Key]*binding { return t.bySvc[id] }

// len is how many bindings there are.
func (t *bindingTable) len() int { return t.n }
