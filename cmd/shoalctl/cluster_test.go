package main

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

func TestClusterInfo(t *testing.T) {
	f := newFakeCluster()
	res := shoalctl(t, serve(t, f), "cluster", "info")
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("cluster info: exit %d, stderr %q", res.Code, res.Stderr)
	}
	want := `ID:                        clus7x9
Name:                      default
Leader:                    m1leader0000000000000000a (mgr-1)
This manager:              m2reach00000000000000000b (mgr-2)
Nodes:                     6
  Managers:                3
  Workers:                 3
Raft:
  Term:                    4
  Applied index:           1234
  Snapshot interval:       10000 entries
CA:
  Digest:                  1x2y3z
  Node certificate expiry: 2160h0m0s (90 days)
Dispatcher:
  Heartbeat period:        5s
`
	if res.Stdout != want {
		t.Errorf("cluster info printed\n%s\nwant\n%s", res.Stdout, want)
	}
	checkNoSecrets(t, res.Stdout)
}

func TestClusterInfoLeaderUnknown(t *testing.T) {
	f := newFakeCluster()
	f.cluster.LeaderId = ""
	res := shoalctl(t, serve(t, f), "cluster", "info")
	if !strings.Contains(res.Stdout, "Leader:                    none (no raft leader)\n") {
		t.Errorf("cluster info without a leader printed\n%s", res.Stdout)
	}
	f = newFakeCluster()
	f.cluster.LeaderId = "gone"
	res = shoalctl(t, serve(t, f), "cluster", "info")
	if !strings.Contains(res.Stdout, "Leader:                    gone\n") {
		t.Errorf("cluster info with an unlisted leader printed\n%s", res.Stdout)
	}
}

func TestClusterInfoJSON(t *testing.T) {
	f := newFakeCluster()
	res := shoalctl(t, serve(t, f), "cluster", "info", "--format", "json")
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("cluster info --format json: exit %d, stderr %q", res.Code, res.Stderr)
	}
	checkNoSecrets(t, res.Stdout)
	if strings.Count(res.Stdout, "\n") < 10 {
		t.Errorf("JSON output is not multiline:\n%s", res.Stdout)
	}
	var got api.GetClusterResponse
	if err := protojson.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("output is not a GetClusterResponse: %v\n%s", err, res.Stdout)
	}
	want := proto.Clone(f.cluster).(*api.GetClusterResponse)
	want.Cluster.RootCa.CaKeyPem = nil
	want.Cluster.RootCa.JoinTokens = nil
	if !proto.Equal(&got, want) {
		t.Errorf("parsed output\n%v\nwant\n%v", &got, want)
	}
}

// checkNoSecrets fails the test if out shows the CA key or a join token.
func checkNoSecrets(t *testing.T, out string) {
	t.Helper()
	for _, secret := range []string{caKey, workerToken, managerToken, "secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows the secret %q:\n%s", secret, out)
		}
	}
}

func TestJoinToken(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		modify        func(f *fakeControl)
		wantCode      int
		wantStdout    string
		wantStderr    string
		wantRotations []api.NodeRole
		wantCalls     []string
	}{
		{
			name: "worker",
			args: []string{"worker"},
			wantStdout: "To add a worker to this cluster, run the following command:\n\n" +
				"    shoald --join-token " + workerToken + " --join-addr 10.0.0.1:4242\n",
			wantCalls: []string{"GetCluster", "ListNodes"},
		},
		{
			name: "manager",
			args: []string{"manager"},
			wantStdout: "To add a manager to this cluster, run the following command:\n\n" +
				"    shoald --join-token " + managerToken + " --join-addr 10.0.0.1:4242\n",
			wantCalls: []string{"GetCluster", "ListNodes"},
		},
		{
			name:       "quiet",
			args:       []string{"-q", "worker"},
			wantStdout: workerToken + "\n",
			wantCalls:  []string{"GetCluster"},
		},
		{
			name:       "quiet, long flag",
			args:       []string{"manager", "--quiet"},
			wantStdout: managerToken + "\n",
			wantCalls:  []string{"GetCluster"},
		},
		{
			name: "rotate",
			args: []string{"--rotate", "worker"},
			wantStdout: "Successfully rotated worker join token.\n\n" +
				"To add a worker to this cluster, run the following command:\n\n" +
				"    shoald --join-token SHOAL-1-digest-rotatedworker --join-addr 10.0.0.1:4242\n",
			wantRotations: []api.NodeRole{api.NodeRole_NODE_ROLE_WORKER},
			wantCalls:     []string{"RotateJoinToken", "ListNodes"},
		},
		{
			name:          "rotate quietly",
			args:          []string{"--rotate", "-q", "manager"},
			wantStdout:    "SHOAL-1-digest-rotatedmanager\n",
			wantRotations: []api.NodeRole{api.NodeRole_NODE_ROLE_MANAGER},
			wantCalls:     []string{"RotateJoinToken"},
		},
		{
			name: "no leader: a reachable manager's address",
			args: []string{"worker"},
			modify: func(f *fakeControl) {
				for _, n := range f.nodes {
					if n.GetId() == idLeader {
						n.ManagerStatus.Leader = false
						n.ManagerStatus.Reachability = api.Reachability_REACHABILITY_UNREACHABLE
					}
				}
			},
			wantStdout: "To add a worker to this cluster, run the following command:\n\n" +
				"    shoald --join-token " + workerToken + " --join-addr 10.0.0.2:4242\n",
			wantCalls: []string{"GetCluster", "ListNodes"},
		},
		{
			name:       "no manager address",
			args:       []string{"worker"},
			modify:     func(f *fakeControl) { f.nodes = nil },
			wantCode:   1,
			wantStderr: "Error: no manager with a known address to join through (use -q to print only the token)\n",
			wantCalls:  []string{"GetCluster", "ListNodes"},
		},
		{
			name:       "bad role",
			args:       []string{"--rotate", "admin"},
			wantCode:   1,
			wantStderr: "Error: invalid role \"admin\": the argument must be worker or manager\n",
		},
		{
			name:     "no role",
			args:     []string{"--rotate"},
			wantCode: 1,
			wantStderr: "Error: \"shoalctl cluster join-token\" requires exactly 1 argument(s) (worker or manager), got 0\n" +
				"See 'shoalctl cluster join-token --help'.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			if tt.modify != nil {
				tt.modify(f)
			}
			res := shoalctl(t, serve(t, f), append([]string{"cluster", "join-token"}, tt.args...)...)
			res.Check(t, tt.wantCode, tt.wantStdout, tt.wantStderr)
			if calls := f.callNames(); !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("RPCs %v, want %v", calls, tt.wantCalls)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			var roles []api.NodeRole
			for _, r := range f.rotations {
				roles = append(roles, r.GetRole())
			}
			if !slices.Equal(roles, tt.wantRotations) {
				t.Errorf("rotated %v, want %v", roles, tt.wantRotations)
			}
		})
	}
}
