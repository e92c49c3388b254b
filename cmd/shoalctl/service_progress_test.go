package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/shoal/shoal/api"
)

// Progress bars of the states on the way to running.
const (
	barNew       = "[=======>                                           ]"
	barPending   = "[==============>                                    ]"
	barAssigned  = "[=====================>                             ]"
	barPreparing = "[===================================>               ]"
	barStarting  = "[==========================================>        ]"
	barRunning   = "[==================================================>]"
)

// frame returns a script step that gives service id the tasks tfs and the
// update status st, and sets its spec version when version is not 0.
func frame(id string, version uint64, st *api.UpdateStatus, tfs ...taskFixture) func(f *fakeControl) {
	return func(f *fakeControl) {
		svc, err := f.findService(id)
		if err != nil {
			panic(err)
		}
		if version != 0 {
			svc.SpecVersion = version
		}
		svc.UpdateStatus = st
		f.tasks = nil
		for _, tf := range tfs {
			f.tasks = append(f.tasks, tf.of(svc))
		}
	}
}

// slotTask is a task of slot in state, desired running.
func slotTask(slot uint64, version uint64, state api.TaskState, node string) taskFixture {
	return taskFixture{
		id:   "task" + strings.Repeat("0", 20) + string(rune('0'+slot)),
		slot: slot, node: node, version: version, desired: running, state: state,
	}
}

func updating() *api.UpdateStatus {
	return &api.UpdateStatus{State: api.UpdateStatus_STATE_UPDATING}
}

func TestFollowCreateConverges(t *testing.T) {
	fastPolling(t)
	f := newFakeCluster()
	pendingWhy := slotTask(2, 1, pending, "")
	pendingWhy.msg = noNodeReason
	pendingNew := slotTask(1, 1, pending, "")
	pendingNew.msg = api.TaskMessagePendingScheduling
	f.frames = []func(*fakeControl){
		frame(idNewService, 0, nil),
		frame(idNewService, 0, nil, pendingNew, pendingWhy),
		frame(idNewService, 0, nil, slotTask(1, 1, api.TaskState_TASK_STATE_ASSIGNED, idWorkerA), pendingWhy),
		frame(idNewService, 0, nil, slotTask(1, 1, api.TaskState_TASK_STATE_ASSIGNED, idWorkerA), pendingWhy),
		frame(idNewService, 0, nil, slotTask(1, 1, running, idWorkerA), slotTask(2, 1, api.TaskState_TASK_STATE_STARTING, idLeader)),
		frame(idNewService, 0, nil, slotTask(1, 1, running, idWorkerA), slotTask(2, 1, running, idLeader)),
	}
	res := shoalctl(t, serve(t, f), "service", "create", "--name", "app", "--replicas", "2", "busybox")
	want := idNewService + "\n" +
		"overall progress: 0 out of 2 tasks\n" +
		"1/2: pending   " + barPending + "\n" +
		"2/2: pending   " + barPending + " " + noNodeReason + "\n" +
		"1/2: assigned  " + barAssigned + "\n" +
		"overall progress: 1 out of 2 tasks\n" +
		"1/2: running   " + barRunning + "\n" +
		"2/2: starting  " + barStarting + "\n" +
		"overall progress: 2 out of 2 tasks\n" +
		"2/2: running   " + barRunning + "\n" +
		"verify: Service converged\n"
	res.Check(t, 0, want, "")
}

func TestFollowUpdatePauses(t *testing.T) {
	fastPolling(t)
	f := newFakeServices()
	failedTask := taskFixture{id: "failed2", slot: 2, node: idLeader, version: 3, desired: shutdown, state: failed,
		err: "task: non-zero exit (1)"}
	f.frames = []func(*fakeControl){
		frame(idWeb, 0, updating(), slotTask(1, 3, api.TaskState_TASK_STATE_STARTING, idWorkerA),
			slotTask(2, 2, running, idLeader), slotTask(3, 2, running, idWorkerA)),
		frame(idWeb, 0, updating(), slotTask(1, 3, running, idWorkerA),
			slotTask(2, 2, running, idLeader), slotTask(3, 2, running, idWorkerA)),
		frame(idWeb, 0, &api.UpdateStatus{State: api.UpdateStatus_STATE_PAUSED,
			Message: "update paused due to failure or early termination of task failed2"},
			slotTask(1, 3, running, idWorkerA), failedTask, slotTask(3, 2, running, idWorkerA)),
	}
	res := shoalctl(t, serve(t, f), "service", "update", "--image", "nginx:broken", "web")
	wantOut := "web\n" +
		"overall progress: 0 out of 3 tasks\n" +
		"1/3: starting  " + barStarting + "\n" +
		"overall progress: 1 out of 3 tasks\n" +
		"1/3: running   " + barRunning + "\n" +
		"2/3: failed    task: non-zero exit (1)\n"
	wantErr := "Error: service web: update paused due to failure or early termination of task failed2\n"
	res.Check(t, 1, wantOut, wantErr)
}

func TestFollowAutomaticRollback(t *testing.T) {
	fastPolling(t)
	f := newFakeServices()
	reason := "update rolled back due to failure or early termination of task task1"
	rollingBack := &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_STARTED, Message: reason}
	rolledBack := &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_COMPLETED, Message: "rollback completed"}
	f.frames = []func(*fakeControl){
		frame(idWeb, 0, updating(), slotTask(1, 3, api.TaskState_TASK_STATE_PREPARING, idWorkerA),
			slotTask(2, 2, running, idLeader), slotTask(3, 2, running, idWorkerA)),
		// The manager returns to the previous spec under a new version;
		// tasks of that spec are adopted, the failed one replaced.
		frame(idWeb, 4, rollingBack, slotTask(1, 4, api.TaskState_TASK_STATE_NEW, ""),
			slotTask(2, 4, running, idLeader), slotTask(3, 4, running, idWorkerA)),
		frame(idWeb, 4, rolledBack, slotTask(1, 4, running, idWorkerA),
			slotTask(2, 4, running, idLeader), slotTask(3, 4, running, idWorkerA)),
	}
	res := shoalctl(t, serve(t, f), "service", "update", "--image", "nginx:broken", "web")
	wantOut := "web\n" +
		"overall progress: 0 out of 3 tasks\n" +
		"1/3: preparing " + barPreparing + "\n" +
		"rollback: " + reason + "\n" +
		"overall progress: rolling back update: 2 out of 3 tasks\n" +
		"1/3: new       " + barNew + "\n" +
		"2/3: running   " + barRunning + "\n" +
		"3/3: running   " + barRunning + "\n" +
		"rollback: rollback completed\n" +
		"overall progress: 3 out of 3 tasks\n" +
		"1/3: running   " + barRunning + "\n" +
		"verify: Service converged\n"
	wantErr := "Error: service web: " + reason + "\n"
	res.Check(t, 1, wantOut, wantErr)
}

// A rollback seen only once it completed has lost its reason.
func TestFollowAutomaticRollbackSeenLate(t *testing.T) {
	fastPolling(t)
	f := newFakeServices()
	f.frames = []func(*fakeControl){
		frame(idWeb, 4, &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_COMPLETED, Message: "rollback completed"},
			slotTask(1, 4, running, idWorkerA), slotTask(2, 4, running, idLeader), slotTask(3, 4, running, idWorkerA)),
	}
	res := shoalctl(t, serve(t, f), "service", "update", "-q", "--image", "nginx:broken", "web")
	wantErr := "Error: service web: the update was rolled back (see 'shoalctl service ps web' for the failed tasks)\n"
	res.Check(t, 1, "web\n", wantErr)
}

// A scale of a service whose update paused before cannot converge: the
// tasks of the old spec wait for the update.
func TestFollowScalePausedService(t *testing.T) {
	fastPolling(t)
	f := newFakeServices()
	paused := &api.UpdateStatus{State: api.UpdateStatus_STATE_PAUSED,
		Message: "update paused due to failure or early termination of task old"}
	f.services[0].UpdateStatus = paused
	f.frames = []func(*fakeControl){
		frame(idWeb, 0, paused, slotTask(1, 2, running, idWorkerA), slotTask(2, 1, running, idLeader),
			slotTask(3, 1, running, idWorkerA), slotTask(4, 2, pending, "")),
	}
	res := shoalctl(t, serve(t, f), "service", "scale", "web=4")
	wantOut := "web scaled to 4\n" +
		"overall progress: 1 out of 4 tasks\n" +
		"1/4: running   " + barRunning + "\n" +
		"4/4: pending   " + barPending + "\n"
	wantErr := "Error: service web: update paused due to failure or early termination of task old; " +
		"it stays paused until the service is updated or rolled back\n"
	res.Check(t, 1, wantOut, wantErr)
}

func TestFollowManualRollback(t *testing.T) {
	fastPolling(t)
	f := newFakeServices()
	f.frames = []func(*fakeControl){
		frame(idWeb, 0, &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_STARTED, Message: "manually requested rollback"},
			slotTask(1, 3, running, idWorkerA), slotTask(2, 2, running, idLeader), slotTask(3, 3, pending, "")),
		frame(idWeb, 0, &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_COMPLETED, Message: "rollback completed"},
			slotTask(1, 3, running, idWorkerA), slotTask(2, 3, running, idLeader), slotTask(3, 3, running, idWorkerA)),
	}
	res := shoalctl(t, serve(t, f), "service", "rollback", "web")
	wantOut := "web\n" +
		"rollback: manually requested rollback\n" +
		"overall progress: rolling back update: 1 out of 3 tasks\n" +
		"1/3: running   " + barRunning + "\n" +
		"3/3: pending   " + barPending + "\n" +
		"rollback: rollback completed\n" +
		"overall progress: 3 out of 3 tasks\n" +
		"2/3: running   " + barRunning + "\n" +
		"3/3: running   " + barRunning + "\n" +
		"verify: Service converged\n"
	res.Check(t, 0, wantOut, "")
}

// A scale moves no spec version and leaves the update status as it was: a
// pause from an earlier update must not fail it.
func TestFollowScaleIgnoresEarlierPause(t *testing.T) {
	fastPolling(t)
	f := newFakeServices()
	paused := &api.UpdateStatus{State: api.UpdateStatus_STATE_PAUSED,
		Message: "update paused due to failure or early termination of task old"}
	f.services[0].UpdateStatus = paused
	f.frames = []func(*fakeControl){
		frame(idWeb, 0, paused, slotTask(1, 2, running, idWorkerA), slotTask(2, 2, running, idLeader),
			slotTask(3, 2, running, idWorkerA), slotTask(4, 2, api.TaskState_TASK_STATE_ASSIGNED, idLeader)),
		frame(idWeb, 0, paused, slotTask(1, 2, running, idWorkerA), slotTask(2, 2, running, idLeader),
			slotTask(3, 2, running, idWorkerA), slotTask(4, 2, running, idLeader)),
	}
	res := shoalctl(t, serve(t, f), "service", "scale", "web=4")
	wantOut := "web scaled to 4\n" +
		"overall progress: 3 out of 4 tasks\n" +
		"1/4: running   " + barRunning + "\n" +
		"2/4: running   " + barRunning + "\n" +
		"3/4: running   " + barRunning + "\n" +
		"4/4: assigned  " + barAssigned + "\n" +
		"overall progress: 4 out of 4 tasks\n" +
		"4/4: running   " + barRunning + "\n" +
		"verify: Service converged\n"
	res.Check(t, 0, wantOut, "")
}

func TestFollowRollbackPauses(t *testing.T) {
	fastPolling(t)
	f := newFakeServices()
	f.frames = []func(*fakeControl){
		frame(idWeb, 0, &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_PAUSED, Message: "rollback paused due to failure or early termination of task task1"},
			slotTask(1, 1, running, idWorkerA)),
	}
	res := shoalctl(t, serve(t, f), "service", "rollback", "-q", "web")
	wantErr := "Error: service web: rollback paused due to failure or early termination of task task1\n"
	res.Check(t, 1, "web\n", wantErr)
}

func TestFollowGlobal(t *testing.T) {
	fastPolling(t)
	f := newFakeCluster()
	node := func(id string, state api.TaskState) taskFixture {
		return taskFixture{id: "t-" + id, node: id, version: 1, desired: running, state: state}
	}
	f.frames = []func(*fakeControl){
		frame(idNewService, 0, nil), // the nodes are ready: tasks are yet to come
		frame(idNewService, 0, nil, node(idWorkerA, running), node(idLeader, api.TaskState_TASK_STATE_PREPARING)),
		frame(idNewService, 0, nil, node(idWorkerA, running), node(idLeader, running)),
	}
	res := shoalctl(t, serve(t, f), "service", "create", "--mode", "global", "--name", "agent", "busybox")
	wantOut := idNewService + "\n" +
		"overall progress: 0 out of 0 tasks\n" +
		"overall progress: 1 out of 2 tasks\n" +
		"mgr-1: preparing " + barPreparing + "\n" +
		"node-1: running   " + barRunning + "\n" +
		"overall progress: 2 out of 2 tasks\n" +
		"mgr-1: running   " + barRunning + "\n" +
		"verify: Service converged\n"
	res.Check(t, 0, wantOut, "")
}

func TestFollowQuietAndDetach(t *testing.T) {
	fastPolling(t)
	for _, flag := range []string{"-q", "-d"} {
		f := newFakeCluster()
		f.frames = []func(*fakeControl){
			frame(idNewService, 0, nil, slotTask(1, 1, running, idWorkerA)),
		}
		res := shoalctl(t, serve(t, f), "service", "create", flag, "busybox")
		res.Check(t, 0, idNewService+"\n", "")
		waited := strings.Contains(strings.Join(f.callNames(), " "), "ListTasks")
		if waited != (flag == "-q") {
			t.Errorf("%s: polled the tasks: %v, RPCs %v", flag, waited, f.callNames())
		}
	}
}

func TestFollowGivesUp(t *testing.T) {
	fastPolling(t)
	f := newFakeCluster()
	res := shoalctl(t, serve(t, f), "service", "create", "--name", "app", "--wait-timeout", "20ms", "busybox")
	wantErr := "Error: service app did not converge within 20ms: 0 out of 1 tasks running (see 'shoalctl service ps app')\n"
	if res.Code != 1 || res.Stderr != wantErr {
		t.Errorf("exit %d, stderr %q; want exit 1, stderr %q", res.Code, res.Stderr, wantErr)
	}
}

func TestFollowInterrupted(t *testing.T) {
	fastPolling(t)
	f := newFakeCluster()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.frames = []func(*fakeControl){
		frame(idNewService, 0, nil),
		func(*fakeControl) { cancel() }, // ctrl-C while a poll is on its way
	}
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--socket", serve(t, f), "service", "create", "--name", "app", "busybox"}, &stdout, &stderr)
	wantErr := "Stopped waiting for service app; it goes on converging (see 'shoalctl service ps app').\n"
	wantOut := idNewService + "\noverall progress: 0 out of 1 tasks\n"
	if code != 0 || stdout.String() != wantOut || stderr.String() != wantErr {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 0, stdout %q, stderr %q", code, stdout.String(), stderr.String(), wantOut, wantErr)
	}
}

func TestFollowServiceRemoved(t *testing.T) {
	fastPolling(t)
	f := newFakeCluster()
	f.frames = []func(*fakeControl){func(f *fakeControl) { f.services = nil }}
	res := shoalctl(t, serve(t, f), "service", "create", "--name", "app", "busybox")
	wantErr := "Error: service app was removed while waiting for it to converge\n"
	if res.Code != 1 || res.Stderr != wantErr {
		t.Errorf("exit %d, stderr %q; want %q", res.Code, res.Stderr, wantErr)
	}
}

func TestFollowScaleSeveral(t *testing.T) {
	fastPolling(t)
	f := newFakeServices()
	db := webService()
	db.Id, db.Spec.Annotations.Name = "dbsvc00000000000000000003", "db"
	f.services = append(f.services, db)
	f.frames = []func(*fakeControl){
		frame(idWeb, 0, nil, slotTask(1, 2, running, idWorkerA)),
		frame(db.Id, 0, nil, slotTask(1, 2, running, idWorkerA), slotTask(2, 2, running, idWorkerA)),
	}
	res := shoalctl(t, serve(t, f), "service", "scale", "web=1", "db=2")
	wantOut := "web scaled to 1\ndb scaled to 2\n" +
		"web:\noverall progress: 1 out of 1 tasks\n1/1: running   " + barRunning + "\nverify: Service converged\n" +
		"db:\noverall progress: 2 out of 2 tasks\n1/2: running   " + barRunning + "\n2/2: running   " + barRunning +
		"\nverify: Service converged\n"
	res.Check(t, 0, wantOut, "")
}

func TestProgressDrawerOnTerminal(t *testing.T) {
	var out bytes.Buffer
	d := &progressDrawer{w: &out, tty: true}
	d.draw([]progressLine{{"overall", "overall progress: 0 out of 1 tasks"}})
	d.draw([]progressLine{{"overall", "overall progress: 0 out of 1 tasks"}, {"slot 1", "1/1: pending"}})
	d.draw([]progressLine{{"overall", "overall progress: 1 out of 1 tasks"}})
	const clear = "\x1b[2K"
	want := clear + "overall progress: 0 out of 1 tasks\n" +
		"\x1b[1A" + clear + "overall progress: 0 out of 1 tasks\n" + clear + "1/1: pending\n" +
		"\x1b[2A" + clear + "overall progress: 1 out of 1 tasks\n" + clear + "\n"
	if out.String() != want {
		t.Errorf("drew %q\nwant %q", out.String(), want)
	}
}

func TestSlotLine(t *testing.T) {
	tests := []struct {
		task *api.Task
		want string
	}{
		{&api.Task{DesiredState: running, Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_ACCEPTED}},
			"1/5: accepted  [============================>                      ]"},
		{&api.Task{DesiredState: running, Status: &api.TaskStatus{State: failed, Err: "exit code 1"}},
			"1/5: failed    exit code 1"},
		{&api.Task{DesiredState: running, Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_REJECTED}},
			"1/5: rejected"},
	}
	for _, tt := range tests {
		if got := slotLine("1/5", tt.task); got != tt.want {
			t.Errorf("slotLine = %q, want %q", got, tt.want)
		}
	}
}
