package manager

// This file owns the manager's answer to the Control API's GetAllocatorState: the running term's
// allocator, described.

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

// AllocatorState describes this manager's allocator; ok is false unless it leads and its
// allocator has rebuilt its state (controlapi.AllocatorSource).
func (m *Manager) AllocatorState() (*api.GetAllocatorStateResponse, bool) {
	a := m.allocator.Load()
	if a == nil {
		return nil, false
	}
	state, running := a.State()
	if !running {
		return nil, false
	}
	rep := a.Report()
	return &api.GetAllocatorStateResponse{
		LeaderNodeId:    m.nodeID,
		StateJson:       string(state),
		Version:         m.store.AppliedIndex(),
		RebuiltJson:     string(rep.State),
		RebuiltVersion:  rep.Version,
		RebuildDuration: durationpb.New(rep.Duration),
		Inconsistencies: rep.Inconsistencies,
	}, true
}
