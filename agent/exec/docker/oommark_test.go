package docker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// TestAwaitOOMMark: a container killed under a memory limit is looked at
// again until the engine marks it killed for memory, for a bounded time;
// any other exit is taken as it is, with no second look. The engine is a
// stand-in that answers inspections and marks the container from its
// markAfter-th inspection on.
func TestAwaitOOMMark(t *testing.T) {
	const id = "c0ffee"
	tests := []struct {
		name       string
		exitCode   int
		memory     int64
		markAfter  int64 // 0: never
		wantMarked bool
		wantLooks  int64 // inspections; -1: at least one
	}{
		{name: "marked late", exitCode: 137, memory: 32 << 20, markAfter: 3, wantMarked: true, wantLooks: 3},
		{name: "never marked", exitCode: 137, memory: 32 << 20, wantLooks: -1},
		{name: "no memory limit", exitCode: 137, markAfter: 1, wantLooks: 0},
		{name: "another exit code", exitCode: 1, memory: 32 << 20, markAfter: 1, wantLooks: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var looks atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/containers/"+id+"/json") {
					http.NotFound(w, r)
					return
				}
				n := looks.Add(1)
				resp := exitedContainer(id, tt.exitCode, tt.memory)
				resp.State.OOMKilled = tt.markAfter != 0 && n >= tt.markAfter
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(resp)
			}))
			defer srv.Close()
			cli, err := client.New(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithAPIVersion("1.41"))
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			e := &Executor{cli: cli}

			start := time.Now()
			got := e.awaitOOMMark(context.Background(), exitedContainer(id, tt.exitCode, tt.memory))
			took := time.Since(start)
			if got.State.OOMKilled != tt.wantMarked {
				t.Errorf("marked %v, want %v", got.State.OOMKilled, tt.wantMarked)
			}
			switch n := looks.Load(); {
			case tt.wantLooks < 0 && n == 0:
				t.Errorf("no second look at a container killed under a memory limit")
			case tt.wantLooks >= 0 && n != tt.wantLooks:
				t.Errorf("%d inspections, want %d", n, tt.wantLooks)
			}
			if took > oomMarkWait+time.Second {
				t.Errorf("took %v, bound %v", took, oomMarkWait)
			}
			if got.State.ExitCode != tt.exitCode {
				t.Errorf("exit code %d, want %d", got.State.ExitCode, tt.exitCode)
			}
		})
	}
}

// TestMayGainOOMMark: only a container this executor did not stop is
// looked at again, and only one killed under a memory limit.
func TestMayGainOOMMark(t *testing.T) {
	task := echoTask(1)
	for _, tt := range []struct {
		name    string
		c       *container.InspectResponse
		stopped bool
		want    bool
	}{
		{"killed under a limit", exitedContainer("a", 137, 32<<20), false, true},
		{"stopped by this executor", exitedContainer("a", 137, 32<<20), true, false},
		{"exited by itself", exitedContainer("a", 2, 32<<20), false, false},
		{"no limit", exitedContainer("a", 137, 0), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &Executor{tasks: map[string]*taskState{}}
			e.taskState(task.GetId()).stopped = tt.stopped
			c := &controller{e: e, task: task}
			if got := c.mayGainOOMMark(workload{task: tt.c}); got != tt.want {
				t.Errorf("mayGainOOMMark = %v, want %v", got, tt.want)
			}
		})
	}
}

func exitedContainer(id string, code int, memory int64) *container.InspectResponse {
	return &container.InspectResponse{
		ID:         id,
		State:      &container.State{Status: container.StateExited, ExitCode: code},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: memory}},
	}
}
