package main

// This file owns following a service until it converges, as `docker
// service create` does: it polls the service and its tasks, draws
// "overall progress: 3 out of 5 tasks" and a bar per slot (per node for a
// global service), and ends with "verify: Service converged" once every
// task meant to run is of the current spec and running and no update is
// in flight. A paused update or rollback (also one paused before the
// command, while it keeps tasks from converging) and an update the manager
// rolled back by itself end it with an error; --wait-timeout too, while
// ctrl-C only stops the waiting. On a terminal the frame is redrawn in
// place; elsewhere only lines that changed are printed.

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
	"github.com/shoal/shoal/internal/ctlconn"
)

// progressInterval is how often follow polls the manager; tests shorten it.
var progressInterval = 200 * time.Millisecond

// follow waits until svc converges, drawing its progress, unless opts say
// --detach. Interrupting the wait (ctrl-C) is not an error: the service
// goes on converging without the CLI.
func (a *app) follow(cmd *cobra.Command, c api.ControlClient, svc *api.Service, opts *waitOptions, rollback bool) error {
	if opts.detach {
		return nil
	}
	out := a.stdout
	if opts.quiet {
		out = io.Discard
	}
	ctx := cmd.Context()
	if opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.timeout)
		defer cancel()
	}
	name := cmp.Or(serviceName(svc), svc.GetId())
	f := &follower{
		a: a, c: c, id: svc.GetId(), name: name,
		baseline: svc.GetUpdateStatus(), rollback: rollback,
		drawer: newProgressDrawer(out),
	}
	err := f.run(ctx)
	switch {
	case err == nil:
		return nil
	case cmd.Context().Err() != nil:
		fmt.Fprintf(a.stderr, "Stopped waiting for service %s; it goes on converging (see 'shoalctl service ps %s').\n", name, name)
		return nil
	case opts.timeout > 0 && (ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded && ctlconn.DeadlineReached(ctx)):
		// (The manager may give up on a call a moment before ctx ends.)
		return fmt.Errorf("service %s did not converge within %v: %d out of %d tasks running (see 'shoalctl service ps %s')",
			name, opts.timeout, f.last.running, f.last.desired, name)
	}
	return err
}

// follower follows one service.
type follower struct {
	a        *app
	c        api.ControlClient
	id, name string
	// baseline is the update status right after the command's change: a
	// status equal to it says nothing about that change (a manager that
	// keeps an old PAUSED status until the update starts).
	baseline *api.UpdateStatus
	// rollback says the command asked for the rollback.
	rollback bool
	drawer   *progressDrawer

	// rolledBack holds the manager's reason once it rolled the update back
	// by itself.
	rolledBack string
	last       progress
}

func (f *follower) run(ctx context.Context) error {
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	for {
		done, err := f.poll(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// poll reads the service once, draws it and says whether it converged.
func (f *follower) poll(parent context.Context) (bool, error) {
	ctx, cancel := f.a.callContext(parent)
	defer cancel()
	removed := fmt.Errorf("service %s was removed while waiting for it to converge", f.name)
	tasks, err := f.c.ListTasks(ctx, &api.ListTasksRequest{ServiceIds: []string{f.id}})
	if status.Code(err) == codes.NotFound {
		return false, removed
	}
	if err != nil {
		return false, fmt.Errorf("list the tasks of service %s: %w", f.name, err)
	}
	resp, err := f.c.GetService(ctx, &api.GetServiceRequest{ServiceId: f.id})
	if status.Code(err) == codes.NotFound {
		return false, removed
	}
	if err != nil {
		return false, fmt.Errorf("get service %s: %w", f.name, err)
	}
	svc := resp.GetService()
	if svc == nil {
		return false, fmt.Errorf("get service %s: %w", f.name, errNoService)
	}
	var nodes []*api.Node
	if svc.GetSpec().GetGlobal() != nil {
		resp, err := f.c.ListNodes(ctx, &api.ListNodesRequest{})
		if err != nil {
			return false, fmt.Errorf("list nodes: %w", err)
		}
		nodes = resp.GetNodes()
	}
	if parent.Err() != nil {
		return false, parent.Err() // answers that raced an interrupt are not drawn
	}
	f.last = measureProgress(svc, tasks.GetTasks(), nodes)
	return f.judge(svc.GetUpdateStatus())
}

// judge draws the frame for the service's update status and decides
// whether the wait is over, and how.
func (f *follower) judge(st *api.UpdateStatus) (bool, error) {
	fresh := !proto.Equal(st, f.baseline)
	state := st.GetState()
	rollingBack := state == api.UpdateStatus_STATE_ROLLBACK_STARTED ||
		state == api.UpdateStatus_STATE_ROLLBACK_PAUSED || state == api.UpdateStatus_STATE_ROLLBACK_COMPLETED
	if rollingBack && fresh && !f.rollback && f.rolledBack == "" {
		// Only a rollback under way still says why it started; a finished
		// one says so instead.
		f.rolledBack = "the update was rolled back (see 'shoalctl service ps " + f.name + "' for the failed tasks)"
		if state != api.UpdateStatus_STATE_ROLLBACK_COMPLETED && st.GetMessage() != "" {
			f.rolledBack = st.GetMessage()
		}
	}

	var frame []progressLine
	if rollingBack && (fresh || f.rollback) && st.GetMessage() != "" {
		frame = append(frame, progressLine{"rollback", "rollback: " + st.GetMessage()})
	}
	overall := "overall progress: "
	if state == api.UpdateStatus_STATE_ROLLBACK_STARTED {
		overall += "rolling back update: "
	}
	frame = append(frame, progressLine{"overall", fmt.Sprintf("%s%d out of %d tasks", overall, f.last.running, f.last.desired)})
	for _, s := range f.last.slots {
		frame = append(frame, progressLine{s.key, slotLine(s.label, s.task)})
	}

	// A pause from before the command holds it up only while tasks of an
	// older spec wait for the paused update: a scale of a paused service.
	paused := state == api.UpdateStatus_STATE_PAUSED || state == api.UpdateStatus_STATE_ROLLBACK_PAUSED
	if paused && (fresh || f.last.outdated > 0) {
		what := "update paused"
		if state == api.UpdateStatus_STATE_ROLLBACK_PAUSED {
			what = "rollback paused"
		}
		err := fmt.Errorf("service %s: %s", f.name, cmp.Or(st.GetMessage(), what))
		if !fresh {
			err = fmt.Errorf("%w; it stays paused until the service is updated or rolled back", err)
		}
		f.drawer.draw(frame)
		return true, err
	}
	updateDone := paused || state == api.UpdateStatus_STATE_UNKNOWN ||
		state == api.UpdateStatus_STATE_COMPLETED || state == api.UpdateStatus_STATE_ROLLBACK_COMPLETED
	converged := f.last.converged && updateDone
	if converged {
		frame = append(frame, progressLine{"verify", "verify: Service converged"})
	}
	f.drawer.draw(frame)
	if converged && f.rolledBack != "" {
		return true, fmt.Errorf("service %s: %s", f.name, f.rolledBack)
	}
	return converged, nil
}

// progress is how far a service's tasks got.
type progress struct {
	slots            []slotProgress
	running, desired int
	// outdated counts the tasks meant to run of an older spec.
	outdated int
	// converged says every task meant to run is of the current spec and
	// running.
	converged bool
}

// slotProgress is the current task of one slot (or node).
type slotProgress struct {
	key, label string
	task       *api.Task
}

// measureProgress finds, for every replicated slot or, for a global
// service, every node that has a task meant to run, the newest task of the
// current spec meant to run; failing that, the newest task of the current
// spec that stopped, so a frame shows why an update paused.
func measureProgress(svc *api.Service, tasks []*api.Task, nodes []*api.Node) progress {
	var p progress
	current, stopped := map[string]*api.Task{}, map[string]*api.Task{}
	global := svc.GetSpec().GetGlobal() != nil
	replicas := svc.GetSpec().GetReplicated().GetReplicas()
	for _, t := range tasks {
		if t.GetSpecVersion() != svc.GetSpecVersion() {
			if t.GetDesiredState() <= api.TaskState_TASK_STATE_RUNNING && (global || t.GetSlot() <= replicas) {
				p.outdated++
			}
			continue
		}
		newest := current
		if t.GetDesiredState() > api.TaskState_TASK_STATE_RUNNING {
			newest = stopped
		}
		key := slotKey(t)
		if old, ok := newest[key]; !ok || newer(t, old) {
			newest[key] = t
		}
	}
	add := func(key, label string) {
		t := cmp.Or(current[key], stopped[key])
		if t == nil {
			return
		}
		p.slots = append(p.slots, slotProgress{key: key, label: label, task: t})
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING && t.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING {
			p.running++
		}
	}
	if !global {
		for slot := uint64(1); slot <= replicas; slot++ {
			add(fmt.Sprintf("slot %d", slot), fmt.Sprintf("%d/%d", slot, replicas))
		}
		p.desired = int(replicas)
		p.converged = p.running == p.desired
		return p
	}

	// A global service's tasks are meant for the nodes holding one meant
	// to run, of any spec.
	hostnames := map[string]string{}
	readyNodes := 0
	for _, n := range nodes {
		hostnames[n.GetId()] = n.GetDescription().GetHostname()
		if n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY &&
			n.GetSpec().GetAvailability() == api.NodeAvailability_NODE_AVAILABILITY_ACTIVE {
			readyNodes++
		}
	}
	var nodeIDs []string
	for _, t := range tasks {
		if t.GetDesiredState() <= api.TaskState_TASK_STATE_RUNNING && t.GetNodeId() != "" && !slices.Contains(nodeIDs, t.GetNodeId()) {
			nodeIDs = append(nodeIDs, t.GetNodeId())
		}
	}
	label := func(id string) string { return cmp.Or(hostnames[id], shortID(id, false)) }
	slices.SortFunc(nodeIDs, func(x, y string) int { return cmp.Or(cmp.Compare(label(x), label(y)), cmp.Compare(x, y)) })
	for _, id := range nodeIDs {
		add("node "+id, label(id))
	}
	p.desired = len(nodeIDs)
	// No task yet while nodes could take one: the manager has not made
	// them yet.
	p.converged = p.running == p.desired && (p.desired > 0 || readyNodes == 0)
	return p
}

// slotKey tells a replicated task's slot, or a global one's node.
func slotKey(t *api.Task) string {
	if t.GetSlot() == 0 {
		return "node " + t.GetNodeId()
	}
	return fmt.Sprintf("slot %d", t.GetSlot())
}

// newer says x replaced y: it was created later, or moved further.
func newer(x, y *api.Task) bool {
	return cmp.Or(taskTime(x).Compare(taskTime(y)),
		cmp.Compare(x.GetStatus().GetState(), y.GetStatus().GetState())) > 0
}

// stateWidth is the longest state name on the way to running: the bars
// line up behind it.
var stateWidth = len("preparing")

// barWidth is the length of a full progress bar, docker's.
const barWidth = 50

// slotLine is "1/5: running   [=====...>]": the task's state and a bar of
// how far it got towards running, then the scheduler's reason when it is
// pending. A task that ended shows its error instead of a bar.
func slotLine(label string, t *api.Task) string {
	state := t.GetStatus().GetState()
	if state > api.TaskState_TASK_STATE_RUNNING {
		why := cmp.Or(t.GetStatus().GetErr(), t.GetStatus().GetMessage())
		return strings.TrimRight(fmt.Sprintf("%s: %-*s %s", label, stateWidth, cli.TaskStateName(state), why), " ")
	}
	filled := barWidth * (int(state) + 1) / (int(api.TaskState_TASK_STATE_RUNNING) + 1)
	line := fmt.Sprintf("%s: %-*s [%s>%s]", label, stateWidth, cli.TaskStateName(state),
		strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled))
	if reason := pendingReason(t); reason != "" {
		line += " " + reason
	}
	return line
}

// progressLine is one line of a frame; key tells which line a later frame's
// line replaces.
type progressLine struct {
	key, text string
}

// progressDrawer draws frames: in place on a terminal, else by printing
// the lines that changed since they were last printed.
type progressDrawer struct {
	w   io.Writer
	tty bool
	// drawn is how many lines the cursor is below the frame's top (tty).
	drawn int
	// printed is each line's text as last printed (not a tty).
	printed map[string]string
}

func newProgressDrawer(w io.Writer) *progressDrawer {
	return &progressDrawer{w: w, tty: isTerminal(w), printed: map[string]string{}}
}

func (d *progressDrawer) draw(frame []progressLine) {
	var buf bytes.Buffer
	if d.tty {
		if d.drawn > 0 {
			fmt.Fprintf(&buf, "\x1b[%dA", d.drawn) // back to the frame's top
		}
		for _, l := range frame {
			buf.WriteString("\x1b[2K" + l.text + "\n")
		}
		for range d.drawn - len(frame) { // blank what a longer frame left
			buf.WriteString("\x1b[2K\n")
		}
		d.drawn = max(d.drawn, len(frame))
	} else {
		for _, l := range frame {
			if text, ok := d.printed[l.key]; !ok || text != l.text {
				buf.WriteString(l.text + "\n")
				d.printed[l.key] = l.text
			}
		}
	}
	_, _ = d.w.Write(buf.Bytes()) // progress is best effort; the result is the exit status
}

// isTerminal says w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
