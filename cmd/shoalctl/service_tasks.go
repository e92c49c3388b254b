package main

// This file owns the task table of `service ps` and `node ps`, printed as
// docker prints it: IDs cut to 12 characters, each slot's current task
// first with the tasks it replaced under it as " \_ web.3" rows, states
// with their age ("Running 5 seconds ago"), each task's address on each
// network in ADDRESSES ("front=10.20.0.5"), and for a task waiting to be
// placed the manager's reason in ERROR.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newServicePsCommand(a *app) *cobra.Command {
	return newPsCommand(a, psTarget{
		arg:   "SERVICE",
		short: "List the tasks of services",
		long: "List the tasks of services: each slot's current task, with the tasks\n" +
			"it replaced under it. A pending task's ERROR says why it is not placed.",
		resolve: func(ctx context.Context, c api.ControlClient, ref string) (string, error) {
			svc, err := getService(ctx, c, ref)
			return svc.GetId(), err
		},
		ids: func(req *api.ListTasksRequest) *[]string { return &req.ServiceIds },
	})
}

func newNodePsCommand(a *app) *cobra.Command {
	return newPsCommand(a, psTarget{
		arg:   "NODE",
		short: "List the tasks on nodes",
		resolve: func(ctx context.Context, c api.ControlClient, ref string) (string, error) {
			n, err := getNode(ctx, c, ref)
			return n.GetId(), err
		},
		ids: func(req *api.ListTasksRequest) *[]string { return &req.NodeIds },
	})
}

// psTarget is what `service ps` and `node ps` differ in: what their
// arguments name, how one resolves to an ID, and which list of the request
// the IDs go to.
type psTarget struct {
	arg, short, long string
	resolve          func(ctx context.Context, c api.ControlClient, ref string) (id string, err error)
	ids              func(*api.ListTasksRequest) *[]string
}

// newPsCommand lists the tasks of the objects its arguments name. One that
// names nothing fails the command after the others' tasks are listed.
func newPsCommand(a *app, target psTarget) *cobra.Command {
	opts := &taskListOptions{}
	kind := strings.ToLower(target.arg)
	cmd := &cobra.Command{
		Use:   "ps " + target.arg + "...",
		Short: target.short,
		Long:  target.long,
		Args:  cli.RequireArgs(target.arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := opts.request()
			if err != nil {
				return err
			}
			ids := target.ids(req)
			if len(*ids) > 0 {
				return fmt.Errorf("invalid --filter %s=%s: %s ps lists the tasks of the %s arguments", kind, (*ids)[0], kind, target.arg)
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				found, errs := getEach(args, func(ref string) (string, error) { return target.resolve(ctx, c, ref) })
				if isUnreachable(errs) || len(found) == 0 {
					return errs
				}
				*ids = found
				if err := opts.list(ctx, c, req, a.stdout); err != nil {
					return err
				}
				return errs
			})
		},
	}
	opts.addFlags(cmd)
	return cmd
}

// taskListOptions are the flags of `service ps` and `node ps`.
type taskListOptions struct {
	filters        []string
	noTrunc, quiet bool
	format         string

	// Filters applied here rather than by the manager.
	idPrefixes, names []string
}

func (o *taskListOptions) addFlags(cmd *cobra.Command) {
	flags := cmd.Flags()
	flags.StringArrayVarP(&o.filters, "filter", "f", nil,
		"show only tasks matching KEY=VALUE: desired-state=running|shutdown|accepted|complete|remove, node=NODE, id=PREFIX, name=NAME; repeatable")
	flags.BoolVar(&o.noTrunc, "no-trunc", false, "do not shorten IDs, image digests and errors")
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "print only task IDs")
	flags.StringVar(&o.format, "format", cli.FormatTable, "output format: table or json")
}

var desiredStateFilters = []enumOption[api.TaskState]{
	{"running", api.TaskState_TASK_STATE_RUNNING},
	{"shutdown", api.TaskState_TASK_STATE_SHUTDOWN},
	{"accepted", api.TaskState_TASK_STATE_ACCEPTED},
	{"complete", api.TaskState_TASK_STATE_COMPLETE},
	{"remove", api.TaskState_TASK_STATE_REMOVE},
}

// request checks the flags and turns the filters the manager applies into
// a ListTasks request.
func (o *taskListOptions) request() (*api.ListTasksRequest, error) {
	if err := cli.CheckFormat("format", o.format, cli.FormatTable, cli.FormatJSON); err != nil {
		return nil, err
	}
	req := &api.ListTasksRequest{}
	for _, f := range o.filters {
		key, value, ok := strings.Cut(f, "=")
		if !ok || value == "" {
			return nil, flagError("filter", f, fmt.Errorf("want KEY=VALUE"))
		}
		switch strings.ToLower(key) {
		case "desired-state":
			state, err := parseEnum(value, desiredStateFilters)
			if err != nil {
				return nil, flagError("filter", f, fmt.Errorf("desired-state %w", err))
			}
			req.DesiredStates = append(req.DesiredStates, state)
		case "node":
			req.NodeIds = append(req.NodeIds, value)
		case "id":
			o.idPrefixes = append(o.idPrefixes, value)
		case "name":
			o.names = append(o.names, value)
		default:
			return nil, flagError("filter", f,
				fmt.Errorf("unknown filter %q (want desired-state, node, id, name)", key))
		}
	}
	return req, nil
}

// keep says a task passes the filters the CLI applies itself.
func (o *taskListOptions) keep(t *api.Task) bool {
	if len(o.idPrefixes) > 0 && !slices.ContainsFunc(o.idPrefixes, func(p string) bool {
		return strings.HasPrefix(t.GetId(), p)
	}) {
		return false
	}
	if len(o.names) > 0 && !slices.ContainsFunc(o.names, func(n string) bool {
		return taskName(t) == n || t.GetServiceName() == n
	}) {
		return false
	}
	return true
}

// list fetches the tasks req selects and the nodes they run on, and prints them.
func (o *taskListOptions) list(ctx context.Context, c api.ControlClient, req *api.ListTasksRequest, w io.Writer) error {
	resp, err := c.ListTasks(ctx, req)
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	tasks := slices.DeleteFunc(resp.GetTasks(), func(t *api.Task) bool { return !o.keep(t) })
	var names tableNames
	if !o.quiet && o.format == cli.FormatTable {
		nodes, err := c.ListNodes(ctx, &api.ListNodesRequest{})
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		names.hosts = make(map[string]string, len(nodes.GetNodes()))
		for _, n := range nodes.GetNodes() {
			names.hosts[n.GetId()] = n.GetDescription().GetHostname()
		}
		if slices.ContainsFunc(tasks, func(t *api.Task) bool { return len(t.GetNetworks()) > 0 }) {
			nets, err := c.ListNetworks(ctx, &api.ListNetworksRequest{})
			if err != nil {
				return fmt.Errorf("list networks: %w", err)
			}
			names.networks = make(map[string]string, len(nets.GetNetworks()))
			for _, n := range nets.GetNetworks() {
				names.networks[n.GetId()] = networkName(n)
			}
		}
	}
	rows := taskRows(tasks, names, o.noTrunc)
	switch {
	case o.quiet:
		for _, r := range rows {
			fmt.Fprintln(w, shortID(r.task.GetId(), o.noTrunc))
		}
		return nil
	case o.format == cli.FormatJSON:
		sorted := make([]*api.Task, len(rows))
		for i, r := range rows {
			sorted[i] = r.task
		}
		return cli.PrintJSONArray(w, sorted)
	}
	table := make([][]string, len(rows))
	for i, r := range rows {
		table[i] = r.cells
	}
	return cli.PrintTable(w, []string{"ID", "NAME", "IMAGE", "NODE", "ADDRESSES", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"}, table)
}

// taskName is a task's name: "web.3", or "web.<node id>" for a global
// service's task (the manager's reconcile.TaskName).
func taskName(t *api.Task) string {
	if t.GetSlot() == 0 {
		return t.GetServiceName() + "." + t.GetNodeId()
	}
	return t.GetServiceName() + "." + strconv.FormatUint(t.GetSlot(), 10)
}

type taskRow struct {
	task  *api.Task
	cells []string
}

// tableNames are the names a task table shows for IDs: node ID →
// hostname, network ID → network name. An ID missing shows as itself.
type tableNames struct {
	hosts, networks map[string]string
}

// taskRows orders tasks by service and slot (node for a global service),
// newest first within a slot, and names every task after a slot's first
// " \_ name", as its history.
func taskRows(tasks []*api.Task, names tableNames, noTrunc bool) []taskRow {
	host := func(t *api.Task) string { return cmp.Or(names.hosts[t.GetNodeId()], t.GetNodeId()) }
	slices.SortStableFunc(tasks, func(x, y *api.Task) int {
		return cmp.Or(
			cmp.Compare(x.GetServiceName(), y.GetServiceName()),
			cmp.Compare(x.GetServiceId(), y.GetServiceId()),
			cmp.Compare(x.GetSlot(), y.GetSlot()),
			cmp.Compare(slotNode(x, host), slotNode(y, host)),
			-taskTime(x).Compare(taskTime(y)),
			cmp.Compare(x.GetId(), y.GetId()))
	})
	rows := make([]taskRow, 0, len(tasks))
	for i, t := range tasks {
		name := taskName(t)
		if i > 0 && sameSlot(tasks[i-1], t) {
			name = ` \_ ` + name
		}
		rows = append(rows, taskRow{task: t, cells: []string{
			shortID(t.GetId(), noTrunc),
			name,
			imageName(t.GetSpec().GetContainer().GetImage(), noTrunc),
			host(t),
			taskAddresses(t, names.networks, noTrunc),
			stateTitle(t.GetDesiredState()),
			currentState(t.GetStatus()),
			taskError(t, noTrunc),
			formatPorts(t.GetEndpoint().GetPorts(), api.PortConfig_PUBLISH_MODE_HOST),
		}})
	}
	return rows
}

// taskAddresses is the ADDRESSES column: "front=10.20.0.5" per network,
// in the order of the task's spec, without the prefix length.
func taskAddresses(t *api.Task, networkNames map[string]string, noTrunc bool) string {
	parts := make([]string, 0, len(t.GetNetworks()))
	for _, n := range t.GetNetworks() {
		name := cmp.Or(networkNames[n.GetNetworkId()], shortID(n.GetNetworkId(), noTrunc))
		parts = append(parts, name+"="+cli.AddrOnly(n.GetAddress()))
	}
	return strings.Join(parts, ", ")
}

// slotNode is what tells a global service's slots apart: the node.
func slotNode(t *api.Task, host func(*api.Task) string) string {
	if t.GetSlot() != 0 {
		return ""
	}
	return host(t) + "\x00" + t.GetNodeId()
}

func sameSlot(x, y *api.Task) bool {
	return x.GetServiceId() == y.GetServiceId() && x.GetSlot() == y.GetSlot() &&
		(x.GetSlot() != 0 || x.GetNodeId() == y.GetNodeId())
}

// taskTime is when a task was created, or else last changed state.
func taskTime(t *api.Task) time.Time {
	if ts := t.GetMeta().GetCreatedAt(); ts != nil {
		return ts.AsTime()
	}
	if ts := t.GetStatus().GetTimestamp(); ts != nil {
		return ts.AsTime()
	}
	return time.Time{}
}

func stateTitle(s api.TaskState) string {
	name := cli.TaskStateName(s)
	return strings.ToUpper(name[:1]) + name[1:]
}

// currentState is "Running 5 seconds ago".
func currentState(st *api.TaskStatus) string {
	state := stateTitle(st.GetState())
	if st.GetTimestamp() == nil {
		return state
	}
	return state + " " + humanDuration(now().Sub(st.GetTimestamp().AsTime())) + " ago"
}

// maxErrLen is how much of an error tables show without --no-trunc.
const maxErrLen = 30

// taskError is the ERROR column: the task's error, quoted and cut to
// maxErrLen unless noTrunc, or for a pending task the reason it is not
// placed, in full: that is what the operator runs ps to learn.
func taskError(t *api.Task, noTrunc bool) string {
	if reason := pendingReason(t); reason != "" {
		return `"` + reason + `"`
	}
	err := t.GetStatus().GetErr()
	if err == "" {
		return ""
	}
	if !noTrunc && utf8.RuneCountInString(err) > maxErrLen {
		err = string([]rune(err)[:maxErrLen-1]) + "…"
	}
	return `"` + err + `"`
}

// pendingReason is why a task meant to run is not placed, if the manager
// said: for a pending task the scheduler's reason, any message but the one
// a task is made with; for a new task the allocator's (waiting for its
// slot's previous task to stop, say).
func pendingReason(t *api.Task) string {
	st := t.GetStatus()
	waiting := st.GetState() == api.TaskState_TASK_STATE_PENDING || st.GetState() == api.TaskState_TASK_STATE_NEW
	if !waiting || t.GetDesiredState() > api.TaskState_TASK_STATE_RUNNING ||
		st.GetErr() != "" || st.GetMessage() == api.TaskMessagePendingScheduling {
		return ""
	}
	return st.GetMessage()
}

// humanDuration says how long d is the way docker does: "5 seconds",
// "about a minute", "3 hours", "2 weeks".
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "about a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	const day = 24
	switch h := int(math.Round(d.Hours())); {
	case h == 1:
		return "about an hour"
	case h < 2*day:
		return fmt.Sprintf("%d hours", h)
	case h < 14*day:
		return fmt.Sprintf("%d days", h/day)
	case h < 60*day:
		return fmt.Sprintf("%d weeks", h/day/7)
	case h < 2*365*day:
		return fmt.Sprintf("%d months", h/day/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/day/365)
}
