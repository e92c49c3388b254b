package main

import (
	"encoding/json"
	"slices"
	"testing"

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
			if res.Code != 0 || res.Stderr != "" {
				t.Fatalf("node ls: exit %d, stderr %q", res.Code, res.Stderr)
			}
			if res.Stdout != tt.want {
				t.Errorf("node ls printed\n%s\nwant\n%s", res.Stdout, tt.want)
			}
		})
	}
}

func TestNodeListJSONParsesBack(t *testing.T) {
	f := newFakeCluster()
	res := shoalctl(t, serve(t, f), "node", "ls", "--format", "json")
	if res.Code != 0 {
		t.Fatalf("node ls --format json: exit %d, stderr %q", res.Code, res.Stderr)
	}
	got := decodeNodes(t, res.Stdout)
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
			if res.Code != tt.wantCode || res.Stderr != tt.wantStderr {
				t.Fatalf("exit %d, stderr %q; want exit %d, stderr %q", res.Code, res.Stderr, tt.wantCode, tt.wantStderr)
			}
			if tt.wantIDs != nil {
				var ids []string
				for _, n := range decodeNodes(t, res.Stdout) {
					ids = append(ids, n.GetId())
				}
				if !slices.Equal(ids, tt.wantIDs) {
					t.Errorf("inspected %v, want %v", ids, tt.wantIDs)
				}
			}
			checkHasLines(t, res.Stdout, tt.wantOut)
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
			res.Check(t, tt.wantCode, tt.wantStdout, tt.wantStderr)
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.nodes) != tt.wantLeft {
				t.Errorf("%d nodes left, want %d", len(f.nodes), tt.wantLeft)
			}
		})
	}
}
