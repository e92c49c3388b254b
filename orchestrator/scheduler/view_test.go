package scheduler

import (
	"testing"

	"github.com/shoal/shoal/api"
)

// TestViewSetTask follows one task, counted on n1 with 1 CPU and host port
// 8080, through a change, and checks what the view counts afterwards and
// whether it says pending tasks are worth another pass (room came back).
func TestViewSetTask(t *testing.T) {
	const host, tcp = api.PortConfig_PUBLISH_MODE_HOST, api.PortConfig_PROTOCOL_TCP
	desired := func(s api.TaskState) func(*api.Task) { return func(t *api.Task) { t.DesiredState = s } }
	observed := func(s api.TaskState) func(*api.Task) { return func(t *api.Task) { t.Status.State = s } }
	tests := []struct {
		name    string
		change  []func(*api.Task)
		counted bool
		freed   bool
	}{
		{"reported running", []func(*api.Task){observed(api.TaskState_TASK_STATE_RUNNING)}, true, false},
		{"told to shut down", []func(*api.Task){desired(api.TaskState_TASK_STATE_SHUTDOWN)}, true, false},
		{"told to be removed", []func(*api.Task){desired(api.TaskState_TASK_STATE_REMOVE)}, true, false},
		{"stopped", []func(*api.Task){desired(api.TaskState_TASK_STATE_SHUTDOWN), observed(api.TaskState_TASK_STATE_SHUTDOWN)}, false, true},
		{"failed", []func(*api.Task){observed(api.TaskState_TASK_STATE_FAILED)}, false, true},
		{"completed", []func(*api.Task){observed(api.TaskState_TASK_STATE_COMPLETE)}, false, true},
		{"rejected", []func(*api.Task){observed(api.TaskState_TASK_STATE_REJECTED)}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView()
			v.setNode(node("n1"))
			uses := []func(*api.Task){running("n1"), reserving(1, 0), publishing(host, tcp, 8080)}
			v.setTask(task("old", 1, append(uses, observed(api.TaskState_TASK_STATE_STARTING))...))

			freed := v.setTask(task("old", 1, append(uses, tt.change...)...))
			if freed != tt.freed {
				t.Errorf("setTask reported room freed = %v, want %v", freed, tt.freed)
			}
			n := v.nodes["n1"]
			wantCPUs := int64(0)
			if tt.counted {
				wantCPUs = 1e9
			}
			if n.nanoCPUs != wantCPUs || (n.tasks == 1) != tt.counted || (n.ports[hostPort{tcp, 8080}] == 1) != tt.counted {
				t.Errorf("n1 counts %d tasks, %d nano CPUs, ports %v; counted = %v", n.tasks, n.nanoCPUs, n.ports, tt.counted)
			}
		})
	}
}
