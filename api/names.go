package api

// Name is the role as operators write it: "worker" or "manager".
func (r NodeRole) Name() string {
	switch r {
	case NodeRole_NODE_ROLE_WORKER:
		return "worker"
	case NodeRole_NODE_ROLE_MANAGER:
		return "manager"
	}
	return r.String()
}
