package main

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

// nodeChange is a run of a node command that changes node specs: the fake
// cluster's answers, what the run prints and the UpdateNode requests it
// sends. A run refused as invalid input must make no RPC at all.
type nodeChange struct {
	name      string
	args      []string // after "node"
	conflicts int      // UpdateNode calls that lose a race
	updateErr error    // every UpdateNode call's answer

	wantCode               int
	wantStdout, wantStderr string
	wantUpdates            []*api.UpdateNodeRequest
	invalidInput           bool
}

func runNodeChanges(t *testing.T, changes []nodeChange) {
	t.Helper()
	for _, tc := range changes {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster()
			f.conflicts = tc.conflicts
			f.updateErr = tc.updateErr
			res := shoalctl(t, serve(t, f), append([]string{"node"}, tc.args...)...)
			res.Check(t, tc.wantCode, tc.wantStdout, tc.wantStderr)
			checkRequests(t, f, "UpdateNode", &f.updates, tc.wantUpdates)
			if calls := f.callNames(); tc.invalidInput && len(calls) != 0 {
				t.Errorf("invalid input made RPCs %v, want none", calls)
			}
		})
	}
}

func TestNodePromoteDemote(t *testing.T) {
	runNodeChanges(t, []nodeChange{
		{
			name:       "promote a worker",
			args:       []string{"promote", "node-1"},
			wantStdout: "Node node-1 promoted to a manager in the cluster.\n",
			wantUpdates: []*api.UpdateNodeRequest{{
				NodeId:      idWorkerA,
				NodeVersion: 11,
				Spec: &api.NodeSpec{
					Annotations:  &api.Annotations{Labels: map[string]string{"zone": "a"}},
					DesiredRole:  api.NodeRole_NODE_ROLE_MANAGER,
					Availability: api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
				},
			}},
		},
		{
			name:       "promote a manager is a no-op",
			args:       []string{"promote", "mgr-1"},
			wantStdout: "Node mgr-1 is already a manager.\n",
		},
		{
			name:       "demote a manager by ID prefix",
			args:       []string{"demote", "m3"},
			wantStdout: "Manager m3 demoted in the cluster.\n",
			wantUpdates: []*api.UpdateNodeRequest{{
				NodeId:      idUnreach,
				NodeVersion: 7,
				Spec:        &api.NodeSpec{DesiredRole: api.NodeRole_NODE_ROLE_WORKER},
			}},
		},
		{
			name:       "demote a worker is a no-op",
			args:       []string{"demote", "node-2"},
			wantStdout: "Node node-2 is already a worker.\n",
		},
		{
			name:       "version conflict: re-read and retry once",
			args:       []string{"promote", "node-2"},
			conflicts:  1,
			wantStdout: "Node node-2 promoted to a manager in the cluster.\n",
			wantUpdates: []*api.UpdateNodeRequest{
				{NodeId: idWorkerB, NodeVersion: 11, Spec: promotedWorkerB()},
				{NodeId: idWorkerB, NodeVersion: 12, Spec: promotedWorkerB()},
			},
		},
		{
			name:       "version conflict twice: give up",
			args:       []string{"promote", "node-2"},
			conflicts:  2,
			wantCode:   1,
			wantStderr: "Error: update node node-2: node " + idWorkerB + " changed since version 12 (now 13)\n",
			wantUpdates: []*api.UpdateNodeRequest{
				{NodeId: idWorkerB, NodeVersion: 11, Spec: promotedWorkerB()},
				{NodeId: idWorkerB, NodeVersion: 12, Spec: promotedWorkerB()},
			},
		},
		{
			name:       "a refusal is not retried",
			args:       []string{"demote", "mgr-1"},
			updateErr:  status.Error(codes.FailedPrecondition, "node m1 is the last manager of the cluster and can't be demoted"),
			wantCode:   1,
			wantStderr: "Error: update node mgr-1: node m1 is the last manager of the cluster and can't be demoted\n",
			wantUpdates: []*api.UpdateNodeRequest{{
				NodeId:      idLeader,
				NodeVersion: 7,
				Spec: &api.NodeSpec{
					DesiredRole:  api.NodeRole_NODE_ROLE_WORKER,
					Availability: api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
				},
			}},
		},
		{
			name:       "several nodes: a missing one does not stop the others",
			args:       []string{"promote", "ghost", "node-3"},
			wantCode:   1,
			wantStdout: "Node node-3 promoted to a manager in the cluster.\n",
			wantStderr: "Error: get node ghost: node \"ghost\" not found\n",
			wantUpdates: []*api.UpdateNodeRequest{{
				NodeId:      idWorkerC,
				NodeVersion: 11,
				Spec: &api.NodeSpec{
					Annotations:  &api.Annotations{Labels: map[string]string{"zone": "a"}},
					DesiredRole:  api.NodeRole_NODE_ROLE_MANAGER,
					Availability: api.NodeAvailability_NODE_AVAILABILITY_PAUSE,
				},
			}},
		},
	})
}

func promotedWorkerB() *api.NodeSpec {
	return &api.NodeSpec{
		Annotations:  &api.Annotations{Labels: map[string]string{"zone": "a"}},
		DesiredRole:  api.NodeRole_NODE_ROLE_MANAGER,
		Availability: api.NodeAvailability_NODE_AVAILABILITY_DRAIN,
	}
}

func TestNodeUpdate(t *testing.T) {
	runNodeChanges(t, []nodeChange{
		{
			name:       "drain",
			args:       []string{"update", "--availability", "drain", "node-1"},
			wantStdout: "node-1\n",
			wantUpdates: []*api.UpdateNodeRequest{{
				NodeId:      idWorkerA,
				NodeVersion: 11,
				Spec: &api.NodeSpec{
					Annotations:  &api.Annotations{Labels: map[string]string{"zone": "a"}},
					Availability: api.NodeAvailability_NODE_AVAILABILITY_DRAIN,
				},
			}},
		},
		{
			name:       "labels added, changed and removed",
			args:       []string{"update", "--label-add", "disk=ssd", "--label-add", "gpu", "--label-rm", "zone", "mgr-1"},
			wantStdout: "mgr-1\n",
			wantUpdates: []*api.UpdateNodeRequest{{
				NodeId:      idLeader,
				NodeVersion: 7,
				Spec: &api.NodeSpec{
					Annotations:  &api.Annotations{Labels: map[string]string{"disk": "ssd", "gpu": ""}},
					DesiredRole:  api.NodeRole_NODE_ROLE_MANAGER,
					Availability: api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
				},
			}},
		},
		{
			name:       "no change sends nothing",
			args:       []string{"update", "--availability", "active", "--label-add", "zone=a", "node-1"},
			wantStdout: "node-1\n",
		},
		{
			name:         "bad availability",
			args:         []string{"update", "--availability", "offline", "node-1"},
			wantCode:     1,
			invalidInput: true,
			wantStderr:   "Error: invalid --availability \"offline\": must be one of active, pause, drain\n",
		},
		{
			name:         "label without key",
			args:         []string{"update", "--label-add", "=x", "node-1"},
			wantCode:     1,
			invalidInput: true,
			wantStderr:   "Error: invalid --label-add \"=x\": want key=value with a non-empty key\n",
		},
		{
			name:         "label added and removed",
			args:         []string{"update", "--label-add", "k=v", "--label-rm", "k", "node-1"},
			wantCode:     1,
			invalidInput: true,
			wantStderr:   "Error: label \"k\" is in both --label-add and --label-rm\n",
		},
		{
			name:         "nothing to do",
			args:         []string{"update", "node-1"},
			wantCode:     1,
			invalidInput: true,
			wantStderr:   "Error: nothing to update: give --availability, --label-add or --label-rm\n",
		},
	})
}

func TestNodeAvailabilityShortcuts(t *testing.T) {
	withAvailability := func(id string, version uint64, av api.NodeAvailability) *api.UpdateNodeRequest {
		return &api.UpdateNodeRequest{NodeId: id, NodeVersion: version, Spec: &api.NodeSpec{
			Annotations:  &api.Annotations{Labels: map[string]string{"zone": "a"}},
			Availability: av,
		}}
	}
	runNodeChanges(t, []nodeChange{
		{
			name:       "drain several",
			args:       []string{"drain", "node-1", "w3"},
			wantStdout: "node-1\nw3\n",
			wantUpdates: []*api.UpdateNodeRequest{
				withAvailability(idWorkerA, 11, api.NodeAvailability_NODE_AVAILABILITY_DRAIN),
				withAvailability(idWorkerC, 11, api.NodeAvailability_NODE_AVAILABILITY_DRAIN),
			},
		},
		{
			name:        "activate a drained node",
			args:        []string{"activate", "node-2"},
			wantStdout:  "node-2\n",
			wantUpdates: []*api.UpdateNodeRequest{withAvailability(idWorkerB, 11, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE)},
		},
		{
			name:        "pause",
			args:        []string{"pause", "node-1"},
			wantStdout:  "node-1\n",
			wantUpdates: []*api.UpdateNodeRequest{withAvailability(idWorkerA, 11, api.NodeAvailability_NODE_AVAILABILITY_PAUSE)},
		},
		{
			name:       "already drained sends nothing",
			args:       []string{"drain", "node-2"},
			wantStdout: "node-2\n",
		},
		{
			name:        "a missing node does not stop the others",
			args:        []string{"drain", "ghost", "node-1"},
			wantCode:    1,
			wantStdout:  "node-1\n",
			wantStderr:  "Error: get node ghost: node \"ghost\" not found\n",
			wantUpdates: []*api.UpdateNodeRequest{withAvailability(idWorkerA, 11, api.NodeAvailability_NODE_AVAILABILITY_DRAIN)},
		},
		{
			name:         "no node",
			args:         []string{"activate"},
			wantCode:     1,
			invalidInput: true,
			wantStderr:   "Error: \"shoalctl node activate\" requires at least one NODE argument\nSee 'shoalctl node activate --help'.\n",
		},
	})
}
