package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

func TestNodeListTable(t *testing.T) {
	tests := []struct {
		name   string
		modify func(f *fakeControl)
		want   string
	}{
		{
			name: "managers, workers, states, marker and order",
			want: `ID                            HOSTNAME   STATUS         AVAILABILITY   MANAGER STATUS
m1leader0000000000000000a     mgr-1      Ready          Active         Leader
m2reach00000000000000000b *   mgr-2      Ready          Active         Reachable
m3unreach000000000000000c     mgr-3      Ready          Active         Unreachable
w1ready000000000000000000d    node-1     Ready          Active
w2down0000000000000000000e    node-2     Down           Drain
w3disc0000000000000000000f    node-3     Disconnected   Pause
`,
		},
		{
			name: "same hostname sorts by ID; unknown manager reachability",
			modify: func(f *fakeControl) {
				f.cluster.ManagerNodeId = "zz-not-listed"
				f.nodes = []*api.Node{
					workerNode("b2", "twin", api.NodeState_NODE_STATE_UNKNOWN, api.NodeAvailability_NODE_AVAILABILITY_ACTIVE),
					managerNode("a1", "twin", "10.0.0.9:4242", false, api.Reachability_REACHABILITY_UNKNOWN),
				}
			},
			want: `ID   HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS
a1   twin       Ready     Active         Unknown
b2   twin       Unknown   Active
`,
		},
		{
			name:   "no nodes prints the header only",
			modify: func(f *fakeControl) { f.nodes = nil },
			want:   "ID   HOSTNAME   STATUS   AVAILABILITY   MANAGER STATUS\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			if tt.modify != nil {
				tt.modify(f)
			}
			res := shoalctl(t, serve(t, f), "node", "ls")
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("node ls: exit %d, stderr %q", res.code, res.stderr)
			}
			if res.stdout != tt.want {
				t.Errorf("node ls printed\n%s\nwant\n%s", res.stdout, tt.want)
			}
		})
	}
}

func TestNodeListJSONParsesBack(t *testing.T) {
	f := newFakeCluster()
	res := shoalctl(t, serve(t, f), "node", "ls", "--format", "json")
	if res.code != 0 {
		t.Fatalf("node ls --format json: exit %d, stderr %q", res.code, res.stderr)
	}
	got := decodeNodes(t, res.stdout)
	var ids []string
	for _, n := range got {
		ids = append(ids, n.GetId())
	}
	wantIDs := []string{idLeader, idReachable, idUnreach, idWorkerA, idWorkerB, idWorkerC}
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("node IDs = %v, want %v (sorted by hostname)", ids, wantIDs)
	}
	for _, n := range got {
		want, _ := f.find(n.GetId())
		if !proto.Equal(n, want) {
			t.Errorf("node %s did not round-trip:\ngot  %v\nwant %v", n.GetId(), n, want)
		}
	}
}

// decodeNodes parses a JSON array of nodes as printed by shoalctl.
func decodeNodes(t *testing.T, out string) []*api.Node {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(out), &raws); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	nodes := make([]*api.Node, 0, len(raws))
	for _, raw := range raws {
		n := &api.Node{}
		if err := protojson.Unmarshal(raw, n); err != nil {
			t.Fatalf("array element is not a Node: %v\n%s", err, raw)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func TestNodeInspect(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantIDs    []string // JSON output: the nodes, in order
		wantOut    []string // pretty output: lines it contains
		wantStderr string
	}{
		{
			name:    "by hostname and ID prefix",
			args:    []string{"mgr-1", "w2"},
			wantIDs: []string{idLeader, idWorkerB},
		},
		{
			name:       "missing node: the others are printed, then the error",
			args:       []string{"node-1", "nope"},
			wantCode:   1,
			wantIDs:    []string{idWorkerA},
			wantStderr: "Error: get node nope: node \"nope\" not found\n",
		},
		{
			name: "pretty",
			args: []string{"--pretty", "mgr-2"},
			wantOut: []string{
				"ID: " + idReachable,
				"Hostname: mgr-2",
				"Desired role: manager",
				"Raft status: Reachable",
				"Address: 10.0.0.2:4242",
				"Not after: 2025-06-01T12:00:00Z",
			},
		},
		{
			name:    "format pretty, worker labels",
			args:    []string{"--format", "pretty", "node-1"},
			wantOut: []string{"Labels: zone=a", "Availability: Active", "Role: worker"},
		},
		{
			name:       "pretty conflicts with format json",
			args:       []string{"--pretty", "--format", "json", "mgr-2"},
			wantCode:   1,
			wantStderr: "Error: --pretty and --format json conflict: give one of them\n",
		},
		{
			name:       "bad format",
			args:       []string{"--format", "yaml", "mgr-2"},
			wantCode:   1,
			wantStderr: "Error: invalid --format \"yaml\": must be one of json, pretty\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := shoalctl(t, serve(t, newFakeCluster()), append([]string{"node", "inspect"}, tt.args...)...)
			if res.code != tt.wantCode || res.stderr != tt.wantStderr {
				t.Fatalf("exit %d, stderr %q; want exit %d, stderr %q", res.code, res.stderr, tt.wantCode, tt.wantStderr)
			}
			if tt.wantIDs != nil {
				var ids []string
				for _, n := range decodeNodes(t, res.stdout) {
					ids = append(ids, n.GetId())
				}
				if !slices.Equal(ids, tt.wantIDs) {
					t.Errorf("inspected %v, want %v", ids, tt.wantIDs)
				}
			}
			lines := strings.Split(res.stdout, "\n")
			for i, l := range lines {
				lines[i] = strings.Join(strings.Fields(l), " ")
			}
			for _, line := range tt.wantOut {
				if !slices.Contains(lines, line) {
					t.Errorf("output lacks line %q:\n%s", line, res.stdout)
				}
			}
		})
	}
}

func TestNodePromoteDemote(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		conflicts   int
		updateErr   error
		wantCode    int
		wantStdout  string
		wantStderr  string
		wantUpdates []*api.UpdateNodeRequest
	}{
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			f.conflicts = tt.conflicts
			f.updateErr = tt.updateErr
			res := shoalctl(t, serve(t, f), append([]string{"node"}, tt.args...)...)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || res.stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q",
					res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			checkUpdates(t, f, tt.wantUpdates)
		})
	}
}

func promotedWorkerB() *api.NodeSpec {
	return &api.NodeSpec{
		Annotations:  &api.Annotations{Labels: map[string]string{"zone": "a"}},
		DesiredRole:  api.NodeRole_NODE_ROLE_MANAGER,
		Availability: api.NodeAvailability_NODE_AVAILABILITY_DRAIN,
	}
}

func checkUpdates(t *testing.T, f *fakeControl, want []*api.UpdateNodeRequest) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.updates) != len(want) {
		t.Fatalf("%d UpdateNode calls %v, want %d", len(f.updates), f.updates, len(want))
	}
	for i := range want {
		if !proto.Equal(f.updates[i], want[i]) {
			t.Errorf("UpdateNode call %d:\ngot  %v\nwant %v", i+1, f.updates[i], want[i])
		}
	}
}

func TestNodeUpdate(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantCode    int
		wantStdout  string
		wantStderr  string
		wantUpdates []*api.UpdateNodeRequest
	}{
		{
			name:       "drain",
			args:       []string{"--availability", "drain", "node-1"},
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
			args:       []string{"--label-add", "disk=ssd", "--label-add", "gpu", "--label-rm", "zone", "mgr-1"},
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
			args:       []string{"--availability", "active", "--label-add", "zone=a", "node-1"},
			wantStdout: "node-1\n",
		},
		{
			name:       "bad availability",
			args:       []string{"--availability", "offline", "node-1"},
			wantCode:   1,
			wantStderr: "Error: invalid --availability \"offline\": must be one of active, pause, drain\n",
		},
		{
			name:       "label without key",
			args:       []string{"--label-add", "=x", "node-1"},
			wantCode:   1,
			wantStderr: "Error: invalid --label-add \"=x\": want key=value with a non-empty key\n",
		},
		{
			name:       "label added and removed",
			args:       []string{"--label-add", "k=v", "--label-rm", "k", "node-1"},
			wantCode:   1,
			wantStderr: "Error: label \"k\" is in both --label-add and --label-rm\n",
		},
		{
			name:       "nothing to do",
			args:       []string{"node-1"},
			wantCode:   1,
			wantStderr: "Error: nothing to update: give --availability, --label-add or --label-rm\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append([]string{"node", "update"}, tt.args...)...)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || res.stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q",
					res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			checkUpdates(t, f, tt.wantUpdates)
			if tt.wantCode != 0 {
				if calls := f.callNames(); len(calls) != 0 {
					t.Errorf("invalid input made RPCs %v, want none", calls)
				}
			}
		})
	}
}

func TestNodeRemove(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		wantLeft   int
	}{
		{
			name:     "a down node",
			args:     []string{"node-2"},
			wantLeft: 5, wantStdout: "node-2\n",
		},
		{
			name:       "a ready node needs force",
			args:       []string{"node-1"},
			wantCode:   1,
			wantLeft:   6,
			wantStderr: "Error: remove node node-1: node " + idWorkerA + " is not down and can't be removed: drain it and stop shoald, or use --force\n",
		},
		{
			name:     "force",
			args:     []string{"-f", "node-1", "node-3"},
			wantLeft: 4, wantStdout: "node-1\nnode-3\n",
		},
		{
			name:       "a missing node does not stop the others",
			args:       []string{"--force", "ghost", "node-1"},
			wantCode:   1,
			wantLeft:   5,
			wantStdout: "node-1\n",
			wantStderr: "Error: remove node ghost: node \"ghost\" not found\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append([]string{"node", "rm"}, tt.args...)...)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || res.stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q",
					res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.nodes) != tt.wantLeft {
				t.Errorf("%d nodes left, want %d", len(f.nodes), tt.wantLeft)
			}
		})
	}
}

func TestNodeAvailabilityShortcuts(t *testing.T) {
	withAvailability := func(id string, version uint64, av api.NodeAvailability) *api.UpdateNodeRequest {
		return &api.UpdateNodeRequest{NodeId: id, NodeVersion: version, Spec: &api.NodeSpec{
			Annotations:  &api.Annotations{Labels: map[string]string{"zone": "a"}},
			Availability: av,
		}}
	}
	tests := []struct {
		name        string
		args        []string
		wantCode    int
		wantStdout  string
		wantStderr  string
		wantUpdates []*api.UpdateNodeRequest
	}{
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
			name:       "no node",
			args:       []string{"activate"},
			wantCode:   1,
			wantStderr: "Error: \"shoalctl node activate\" requires at least one NODE argument\nSee 'shoalctl node activate --help'.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append([]string{"node"}, tt.args...)...)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || res.stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q",
					res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			checkUpdates(t, f, tt.wantUpdates)
		})
	}
}
