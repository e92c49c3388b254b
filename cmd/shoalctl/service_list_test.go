package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

func TestServiceList(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		modify func(f *fakeControl)
		want   string
	}{
		{
			name: "table",
			want: `ID             NAME   MODE         REPLICAS   IMAGE           PORTS
apisvc000000   api    global       1/2        example/api:2
websvc000000   web    replicated   2/3        nginx:1.27      *:8080->80/tcp, *:5353->53/udp
`,
		},
		{
			name: "max per node",
			modify: func(f *fakeControl) {
				f.services = f.services[:1]
				f.services[0].Spec.Task.Placement.MaxReplicas = 1
				f.services[0].Spec.Endpoint = nil
			},
			want: `ID             NAME   MODE         REPLICAS               IMAGE        PORTS
websvc000000   web    replicated   2/3 (max 1 per node)   nginx:1.27
`,
		},
		{
			name: "quiet",
			args: []string{"-q"},
			want: "apisvc000000\nwebsvc000000\n",
		},
		{
			name:   "none",
			modify: func(f *fakeControl) { f.services = nil },
			want:   "ID   NAME   MODE   REPLICAS   IMAGE   PORTS\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServices()
			if tt.modify != nil {
				tt.modify(f)
			}
			res := shoalctl(t, serve(t, f), append([]string{"service", "ls"}, tt.args...)...)
			if res.Code != 0 || res.Stderr != "" {
				t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
			}
			if res.Stdout != tt.want {
				t.Errorf("service ls printed\n%s\nwant\n%s", res.Stdout, tt.want)
			}
		})
	}
}

func TestServicePs(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		want       string
		wantStderr string
		wantReq    *api.ListTasksRequest
	}{
		{
			name: "history under each slot's current task; a pending task says why",
			args: []string{"web"},
			want: `ID             NAME        IMAGE        NODE     ADDRESSES   DESIRED STATE   CURRENT STATE             ERROR                                                            PORTS
webtask1new0   web.1       nginx:1.27   node-1               Running         Running 5 seconds ago
webtask1old0    \_ web.1   nginx:1.27   node-1               Shutdown        Shutdown 10 minutes ago
webtask1oom0    \_ web.1   nginx:1.27   node-1               Shutdown        Failed 2 hours ago        "task: non-zero exit (137): ki…"
webtask2new0   web.2       nginx:1.27   mgr-1                Running         Running 50 seconds ago
webtask3new0   web.3       nginx:1.27                        Running         Pending 3 seconds ago     "no suitable node (1 node not available, 2 nodes lack 2 CPUs)"
`,
			wantReq: &api.ListTasksRequest{ServiceIds: []string{idWeb}},
		},
		{
			name: "no-trunc",
			args: []string{"--no-trunc", "-f", "name=web.1", "web"},
			want: `ID                          NAME        IMAGE                                NODE     ADDRESSES   DESIRED STATE   CURRENT STATE             ERROR                                                   PORTS
webtask1new00000000000001   web.1       nginx:1.27@sha256:0123456789abcdef   node-1               Running         Running 5 seconds ago
webtask1old00000000000001    \_ web.1   nginx:1.27@sha256:0123456789abcdef   node-1               Shutdown        Shutdown 10 minutes ago
webtask1oom00000000000001    \_ web.1   nginx:1.27@sha256:0123456789abcdef   node-1               Shutdown        Failed 2 hours ago        "task: non-zero exit (137): killed by the OOM killer"
`,
		},
		{
			name: "desired state running, global service with host ports",
			args: []string{"--filter", "desired-state=running", "web", "api"},
			want: `ID             NAME                             IMAGE           NODE     ADDRESSES   DESIRED STATE   CURRENT STATE                  ERROR                                                            PORTS
apitaskA0000   api.w1ready000000000000000000d   example/api:2   node-1               Running         Running 3 hours ago                                                                             *:9000->9000/tcp
apitaskC0000   api.w3disc0000000000000000000f   example/api:2   node-3               Running         Preparing about a minute ago                                                                    *:9000->9000/tcp
webtask1new0   web.1                            nginx:1.27      node-1               Running         Running 5 seconds ago
webtask2new0   web.2                            nginx:1.27      mgr-1                Running         Running 50 seconds ago
webtask3new0   web.3                            nginx:1.27                           Running         Pending 3 seconds ago          "no suitable node (1 node not available, 2 nodes lack 2 CPUs)"
`,
			wantReq: &api.ListTasksRequest{ServiceIds: []string{idWeb, idAPI},
				DesiredStates: []api.TaskState{api.TaskState_TASK_STATE_RUNNING}},
		},
		{
			name:    "quiet, by node and id",
			args:    []string{"-q", "-f", "node=mgr-1", "-f", "id=webtask2", "-f", "desired-state=shutdown", "-f", "desired-state=Running", "web"},
			want:    "webtask2new0\n",
			wantReq: &api.ListTasksRequest{ServiceIds: []string{idWeb}, NodeIds: []string{"mgr-1"}, DesiredStates: []api.TaskState{shutdown, running}},
		},
		{
			name:       "a missing service: the others are listed",
			args:       []string{"-q", "ghost", "api"},
			wantCode:   1,
			want:       "apitaskA0000\napitaskC0000\n",
			wantStderr: "Error: get service ghost: service \"ghost\" not found\n",
		},
		{
			name:       "bad filter key",
			args:       []string{"-f", "state=running", "web"},
			wantCode:   1,
			wantStderr: "Error: invalid --filter \"state=running\": unknown filter \"state\" (want desired-state, node, id, name)\n",
		},
		{
			name:       "bad desired state",
			args:       []string{"-f", "desired-state=up", "web"},
			wantCode:   1,
			wantStderr: "Error: invalid --filter \"desired-state=up\": desired-state must be one of running, shutdown, accepted, complete, remove\n",
		},
		{
			name:       "filter without value",
			args:       []string{"-f", "node", "web"},
			wantCode:   1,
			wantStderr: "Error: invalid --filter \"node\": want KEY=VALUE\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixClock(t)
			f := newFakeServices()
			res := shoalctl(t, serve(t, f), append([]string{"service", "ps"}, tt.args...)...)
			res.Check(t, tt.wantCode, tt.want, tt.wantStderr)
			if tt.wantReq != nil {
				f.mu.Lock()
				defer f.mu.Unlock()
				if len(f.taskLists) != 1 || !proto.Equal(f.taskLists[0], tt.wantReq) {
					t.Errorf("ListTasks requests %v, want [%v]", f.taskLists, tt.wantReq)
				}
			}
		})
	}
}

func TestNodePs(t *testing.T) {
	fixClock(t)
	f := newFakeServices()
	sock := serve(t, f)
	res := shoalctl(t, sock, "node", "ps", "-f", "desired-state=running", "node-1")
	want := `ID             NAME                             IMAGE           NODE     ADDRESSES   DESIRED STATE   CURRENT STATE           ERROR   PORTS
apitaskA0000   api.w1ready000000000000000000d   example/api:2   node-1               Running         Running 3 hours ago             *:9000->9000/tcp
webtask1new0   web.1                            nginx:1.27      node-1               Running         Running 5 seconds ago
`
	res.Check(t, 0, want, "")

	res = shoalctl(t, sock, "node", "ps", "-f", "node=node-2", "node-1")
	if wantErr := "Error: invalid --filter node=node-2: node ps lists the tasks of the NODE arguments\n"; res.Code != 1 || res.Stderr != wantErr {
		t.Errorf("exit %d, stderr %q, want %q", res.Code, res.Stderr, wantErr)
	}
	res = shoalctl(t, sock, "node", "ps", "ghost")
	if wantErr := "Error: get node ghost: node \"ghost\" not found\n"; res.Code != 1 || res.Stderr != wantErr || res.Stdout != "" {
		t.Errorf("exit %d, stdout %q, stderr %q, want %q", res.Code, res.Stdout, res.Stderr, wantErr)
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "less than a second"},
		{999 * time.Millisecond, "less than a second"},
		{time.Second, "1 second"},
		{59 * time.Second, "59 seconds"},
		{90 * time.Second, "about a minute"},
		{59 * time.Minute, "59 minutes"},
		{80 * time.Minute, "about an hour"},
		{47 * time.Hour, "47 hours"},
		{3 * 24 * time.Hour, "3 days"},
		{20 * 24 * time.Hour, "2 weeks"},
		{90 * 24 * time.Hour, "3 months"},
		{3 * 365 * 24 * time.Hour, "3 years"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTaskNames(t *testing.T) {
	tasks := []*api.Task{
		{Id: "b", ServiceName: "web", Slot: 10},
		{Id: "a", ServiceName: "web", Slot: 2},
		{Id: "c", ServiceName: "api", NodeId: "n1"},
	}
	var names []string
	for _, r := range taskRows(tasks, tableNames{}, false) {
		names = append(names, r.cells[1])
	}
	// Slots sort as numbers, not as text.
	if want := []string{"api.n1", "web.2", "web.10"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if s := strings.Join(names, ","); strings.Contains(s, `\_`) {
		t.Errorf("different slots drawn as history: %s", s)
	}
}
