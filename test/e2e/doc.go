// Package e2e holds shoal's multi-node tests. The tests in this package run
// real shoald processes on loopback addresses (127.x.y.z, unique per test
// and per run) and talk to them as an operator would: through the Control
// API on each manager's unix socket and through shoalctl. Later issues add
// nodes in network namespaces on an underlay bridge and tasks in real Docker
// containers.
package e2e
