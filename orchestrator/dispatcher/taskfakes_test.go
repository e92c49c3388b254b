package dispatcher_test

// This file holds the task side's test doubles and helpers: an Assignments
// stream, and tasks created, changed, deleted and reported on.

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/store"
)

// fakeAssignStream is the server side of an Assignments stream.
type fakeAssignStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs chan *api.AssignmentsMessage
}

func (f *fakeAssignStream) Context() context.Context { return f.ctx }

func (f *fakeAssignStream) Send(m *api.AssignmentsMessage) error {
	select {
	case f.msgs <- proto.Clone(m).(*api.AssignmentsMessage):
		return nil
	case <-f.ctx.Done():
		return f.ctx.Err()
	}
}

// openAssignments is one Assignments call in progress.
type openAssignments struct {
	stream *fakeAssignStream
	cancel context.CancelFunc
	done   chan error
}

// assignments opens an Assignments stream as node id on session sessionID.
// The call is cancelled and awaited at cleanup.
func (e *testEnv) assignments(t *testing.T, id, sessionID string) *openAssignments {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ctx = e.nodeContext(t, ctx, id, "192.0.2.1:5000")
	a := &openAssignments{
		stream: &fakeAssignStream{ctx: ctx, msgs: make(chan *api.AssignmentsMessage, 64)},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { a.done <- e.d.Assignments(&api.AssignmentsRequest{SessionId: sessionID}, a.stream) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(waitFor):
			t.Errorf("the assignments stream of %s did not end after its context did", id)
		}
	})
	return a
}

// recv returns the stream's next message.
func (a *openAssignments) recv(t *testing.T) *api.AssignmentsMessage {
	t.Helper()
	select {
	case m := <-a.stream.msgs:
		return m
	case err := <-a.done:
		a.done <- err
		t.Fatalf("the assignments stream ended (%v) before sending a message", err)
	case <-time.After(waitFor):
		t.Fatal("no assignments message")
	}
	return nil
}

// end waits for the stream to end and returns its error.
func (a *openAssignments) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(waitFor):
		t.Fatal("the assignments stream did not end")
	}
	return nil
}

// newTask returns a task of service svc1 on nodeID observed at state and
// desired RUNNING.
func newTask(id, nodeID string, state api.TaskState) *api.Task {
	return &api.Task{
		Id:           id,
		ServiceId:    "svc1",
		ServiceName:  "web",
		Slot:         1,
		NodeId:       nodeID,
		Spec:         &api.TaskSpec{Container: &api.ContainerSpec{Image: "nginx"}},
		SpecVersion:  1,
		DesiredState: api.TaskState_TASK_STATE_RUNNING,
		Status:       &api.TaskStatus{State: state},
	}
}

func (e *testEnv) addTasks(t *testing.T, tasks ...*api.Task) {
	t.Helper()
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		for _, task := range tasks {
			if err := tx.Create(task); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("create tasks: %v", err)
	}
}

// task returns task id as stored, nil if it is not.
func (e *testEnv) task(id string) *api.Task {
	var task *api.Task
	e.store.View(func(tx store.ReadTx) { task = tx.Task(id) })
	return task
}

// changeTask applies change to task id in one transaction.
func (e *testEnv) changeTask(t *testing.T, id string, change func(*api.Task)) {
	t.Helper()
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		task := tx.Task(id)
		if task == nil {
			return errors.New("no task " + id)
		}
		change(task)
		return tx.Update(task)
	})
	if err != nil {
		t.Fatalf("change task %s: %v", id, err)
	}
}

func (e *testEnv) deleteTask(t *testing.T, id string) {
	t.Helper()
	err := e.store.Update(t.Context(), func(tx store.Tx) error {
		task := tx.Task(id)
		if task == nil {
			return errors.New("no task " + id)
		}
		return tx.Delete(task)
	})
	if err != nil {
		t.Fatalf("delete task %s: %v", id, err)
	}
}

// reportStatus calls UpdateTaskStatus as node id on session sessionID.
func (e *testEnv) reportStatus(t *testing.T, id, sessionID string, updates ...*api.TaskStatusUpdate) error {
	t.Helper()
	ctx := e.nodeContext(t, t.Context(), id, "192.0.2.1:5000")
	_, err := e.d.UpdateTaskStatus(ctx, &api.UpdateTaskStatusRequest{SessionId: sessionID, Updates: updates})
	return err
}

func report(taskID string, state api.TaskState) *api.TaskStatusUpdate {
	return &api.TaskStatusUpdate{TaskId: taskID, Status: &api.TaskStatus{State: state, Message: state.String()}}
}
