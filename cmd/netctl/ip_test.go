package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

func TestBindingRows(t *testing.T) {
	dir := directory{
		networks: map[string]string{idFront: "front"},
		hosts:    map[string]string{idNode1: "node-1"},
	}
	tests := []struct {
		name    string
		binding *api.IPBinding
		tasks   map[string]*api.Task
		want    []string
	}{
		{
			name:    "a VIP: no slot, no task",
			binding: &api.IPBinding{ServiceName: "web", NetworkId: idFront, Kind: api.IPBinding_KIND_VIP, Address: "10.20.0.2/24"},
			want:    []string{"web", "vip", "front", "10.20.0.2", "bound", "", ""},
		},
		{
			name: "pinned; the node from the last history entry",
			binding: &api.IPBinding{ServiceName: "web", NetworkId: idFront, Slot: 4, Address: "10.20.0.4/24", Pinned: true,
				TaskId: "task4new000000000", History: []*api.BindingHolder{
					{TaskId: "task4old000000000", NodeId: "othernode"},
					{TaskId: "task4new000000000", NodeId: idNode1},
				}},
			want: []string{"web", "4", "front", "10.20.0.4", "pinned", "task4new0000", "node-1"},
		},
		{
			name: "the history does not say the node yet: the task does",
			binding: &api.IPBinding{ServiceName: "web", NetworkId: idFront, Slot: 5, Address: "10.20.0.5/24",
				TaskId: "task5", History: []*api.BindingHolder{{TaskId: "task5"}}},
			tasks: map[string]*api.Task{"task5": {Id: "task5", NodeId: idNode1}},
			want:  []string{"web", "5", "front", "10.20.0.5", "bound", "task5", "node-1"},
		},
		{
			name: "held wins over pinned; releasing; unknown IDs shortened",
			binding: &api.IPBinding{ServiceId: "gonesvc0000000000000", NetworkId: "gonenet0000000000000", Slot: 6,
				Address: "10.20.0.6/24", Pinned: true, HeldSince: ago(0), ReleaseRequested: true, TaskId: "task6",
				History: []*api.BindingHolder{{TaskId: "task6", NodeId: "gonenode000000000000"}}},
			want: []string{"gonesvc00000", "6", "gonenet00000", "10.20.0.6", "held, releasing", "task6", "gonenode0000"},
		},
		{
			name: "a global service's binding names its node",
			binding: &api.IPBinding{ServiceName: "api", NetworkId: idFront, Kind: api.IPBinding_KIND_NODE, NodeId: idNode1,
				Address: "fd00:20::5/64"},
			want: []string{"api", "node-1", "front", "fd00:20::5", "bound", "", ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := bindingRows([]*api.IPBinding{tt.binding}, dir, tt.tasks)
			if len(rows) != 1 || !slices.Equal(rows[0], tt.want) {
				t.Errorf("row %q, want %q", rows, tt.want)
			}
		})
	}
}

func TestIPList(t *testing.T) {
	f := newFake()
	res := netctl(t, serve(t, f), "ip", "ls")
	res.Check(t, 0, `SERVICE   SLOT/NODE   NETWORK   IP            STATE             TASK           NODE
web       vip         front     10.20.0.128   bound
web       1           front     10.20.0.10    pinned            webtask1b000   node-1
web       2           front     10.20.0.129   bound             webtask2a000   node-2
web       3           front     10.20.0.130   held, releasing   webtask3gone   node-1
api       node-1      back      10.30.0.5     bound             apitaskn1000   node-1
`, "")
	// Only web's slot 2 needs its task for the node.
	if got := f.callNames(); !slices.Equal(got, []string{"ListBindings", "ListNetworks", "ListNodes", "ListTasks"}) {
		t.Errorf("RPCs %v", got)
	}

	res = netctl(t, serve(t, newFake()), "ip", "ls", "--service", "api", "--network", "back")
	res.Check(t, 0, `SERVICE   SLOT/NODE   NETWORK   IP          STATE   TASK           NODE
api       node-1      back      10.30.0.5   bound   apitaskn1000   node-1
`, "")
}

func TestIPListJSON(t *testing.T) {
	res := netctl(t, serve(t, newFake()), "ip", "ls", "--service", "web", "--format", "json")
	if res.Code != 0 {
		t.Fatalf("exit %d, stderr %q", res.Code, res.Stderr)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(res.Stdout), &raws); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, res.Stdout)
	}
	want := fixtureBindings()[:4]
	if len(raws) != len(want) {
		t.Fatalf("%d bindings, want %d", len(raws), len(want))
	}
	for i, raw := range raws {
		var b api.IPBinding
		if err := protojson.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&b, want[i]) {
			t.Errorf("binding %d:\n%v\nwant\n%v", i, &b, want[i])
		}
	}
	// Every field is there, also zero ones: the VIP's kind and slot.
	if !strings.Contains(string(raws[1]), `"kind": "KIND_SLOT"`) {
		t.Errorf("zero fields left out:\n%s", raws[1])
	}
}

func TestIPHistory(t *testing.T) {
	fixClock(t)
	tests := []struct {
		name, args, want, wantStderr string
	}{
		{
			name: "oldest first; reaped tasks",
			args: "ip history web 1",
			want: `NETWORK   ADDRESS      TASK           NODE     SINCE                               STATE
front     10.20.0.10   webtask1a000   node-2   2025-03-01T10:00:00Z (2h0m0s ago)   shutdown
front     10.20.0.10   webtask1b000   node-1   2025-03-01T11:55:00Z (5m0s ago)     running
`,
		},
		{
			name: "a holder not yet placed; by network",
			args: "ip history web 2 --network front",
			want: `NETWORK   ADDRESS       TASK           NODE   SINCE                             STATE
front     10.20.0.129   webtask2a000          2025-03-01T11:59:00Z (1m0s ago)   assigned
`,
		},
		{
			name: "a task the manager deleted",
			args: "ip history web 3",
			want: `NETWORK   ADDRESS       TASK           NODE     SINCE                               STATE
front     10.20.0.130   webtask3gone   node-1   2025-03-01T09:00:00Z (3h0m0s ago)   reaped
`,
		},
		{
			name: "a global service's node by hostname",
			args: "ip history api node-1",
			want: `NETWORK   ADDRESS     TASK           NODE     SINCE                               STATE
back      10.30.0.5   apitaskn1000   node-1   2025-03-01T11:00:00Z (1h0m0s ago)   running
`,
		},
		{
			name:       "no such slot",
			args:       "ip history web 9",
			wantStderr: "Error: service web has no address for slot 9\n",
		},
		{
			name:       "not on that network",
			args:       "ip history web 1 --network back",
			wantStderr: "Error: service web has no address for slot 1 on network back\n",
		},
		{
			name:       "slot zero",
			args:       "ip history web 0",
			wantStderr: "Error: invalid SLOT \"0\": slots count from 1\n",
		},
		{
			name:       "an unknown node",
			args:       "ip history api node-9",
			wantStderr: "Error: service api has no address for node node-9\n",
		},
		{
			name: "a node by ID prefix",
			args: "ip history api node1id",
			want: `NETWORK   ADDRESS     TASK           NODE     SINCE                               STATE
back      10.30.0.5   apitaskn1000   node-1   2025-03-01T11:00:00Z (1h0m0s ago)   running
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := netctl(t, serve(t, newFake()), strings.Fields(tt.args)...)
			code := 0
			if tt.wantStderr != "" {
				code = 1
			}
			res.Check(t, code, tt.want, tt.wantStderr)
		})
	}
}

func TestIPHistoryJSON(t *testing.T) {
	fixClock(t)
	res := netctl(t, serve(t, newFake()), "ip", "history", "web", "1", "--format", "json")
	var got []historyEntry
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil || res.Code != 0 {
		t.Fatalf("exit %d, %v:\n%s", res.Code, err, res.Stdout)
	}
	want := []historyEntry{
		{NetworkID: idFront, Network: "front", Address: "10.20.0.10/24", TaskID: "webtask1a0000000000000001",
			NodeID: idNode2, Node: "node-2", Since: ago(2 * time.Hour).AsTime(), State: "shutdown"},
		{NetworkID: idFront, Network: "front", Address: "10.20.0.10/24", TaskID: "webtask1b0000000000000001",
			NodeID: idNode1, Node: "node-1", Since: ago(5 * time.Minute).AsTime(), State: "running"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestIPRelease(t *testing.T) {
	tests := []struct {
		name, args, want, wantStderr string
		wantReq                      *api.ReleaseBindingRequest
	}{
		{
			name:    "a slot on every network",
			args:    "ip release web 2",
			want:    "web slot 2 on front: 10.20.0.129 marked for release\n",
			wantReq: &api.ReleaseBindingRequest{ServiceId: "web", Slot: 2},
		},
		{
			name:    "a global service's node, on one network",
			args:    "ip release api node-1 --network back",
			want:    "api node node-1 on back: 10.30.0.5 marked for release\n",
			wantReq: &api.ReleaseBindingRequest{ServiceId: "api", NodeId: "node-1", NetworkId: "back"},
		},
		{
			name:       "nothing there",
			args:       "ip release web 7",
			wantStderr: "Error: release slot 7 of service web: service web has no binding for slot 7\n",
			wantReq:    &api.ReleaseBindingRequest{ServiceId: "web", Slot: 7},
		},
		{
			name:       "two arguments",
			args:       "ip release web",
			wantStderr: "Error: \"netctl ip release\" requires exactly 2 argument(s) (SERVICE SLOT), got 1\nSee 'netctl ip release --help'.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			res := netctl(t, serve(t, f), strings.Fields(tt.args)...)
			code := 0
			if tt.wantStderr != "" {
				code = 1
			}
			res.Check(t, code, tt.want, tt.wantStderr)
			f.mu.Lock()
			defer f.mu.Unlock()
			switch {
			case tt.wantReq == nil && len(f.releases) > 0:
				t.Errorf("released %v", f.releases)
			case tt.wantReq != nil && (len(f.releases) != 1 || !proto.Equal(f.releases[0], tt.wantReq)):
				t.Errorf("ReleaseBinding requests %v, want [%v]", f.releases, tt.wantReq)
			}
		})
	}
}

func TestParseSlotRef(t *testing.T) {
	tests := []struct {
		in      string
		want    slotRef
		wantErr string
	}{
		{in: "3", want: slotRef{slot: 3}},
		{in: "node-1", want: slotRef{node: "node-1"}},
		{in: "0", wantErr: "slots count from 1"},
		{in: "-2", wantErr: "want a slot number, or a node"},
		{in: "", wantErr: "want a slot number, or a node"},
	}
	for _, tt := range tests {
		got, err := parseSlotRef(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseSlotRef(%q) error %v, want %q", tt.in, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("parseSlotRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
