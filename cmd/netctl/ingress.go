package main

// This file owns `netctl ingress ls`: every published port of every service, its backends as
// the cluster wants them on one node and as that node's load balancer holds them. mesh_diff.go
// pairs and compares; this file lays out.

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/internal/cli"
)

func newIngressCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ingress",
		Short: "Show the services' published ports and what a node's load balancer holds for them",
		Long: "Show the services' published ports. In ingress mode (the routing mesh) every\n" +
			"node answers at the published port and balances over every RUNNING task of the\n" +
			"service; in host mode only the nodes running a task answer, with their own\n" +
			"tasks. Backends are the tasks' addresses on the service's first network, at the\n" +
			"target port.",
	}
	cmd.AddCommand(newIngressListCommand(a))
	return cmd
}

// ingressRow is one published port in `ingress ls`.
type ingressRow struct {
	Service   string `json:"service"`
	ServiceID string `json:"service_id"`
	Protocol  string `json:"protocol"`
	Published uint32 `json:"published"`
	// Target is the tasks' port, 0 when the kernel has a port the services do not publish.
	Target uint32 `json:"target"`
	Mode   string `json:"mode"`
	// Backends are the desired backends (ip:port) on the node, nil when the port is not to be
	// open there (host mode, no task of the service on the node).
	Backends []string `json:"backends"`
	// Programmed are the backends the node's load balancer holds, nil when it lacks the port.
	Programmed  []string `json:"programmed"`
	State       string   `json:"state"`
	Differences []string `json:"differences,omitempty"`
}

func newIngressListCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List every published port with its backends, desired and programmed",
		Long: "List every published port, sorted by service, protocol and port: the TARGET\n" +
			"port of the tasks, the MODE (ingress or host), BACKENDS as --node should\n" +
			"balance over them (the count, then the list) and PROGRAMMED what its load\n" +
			"balancer holds (--node: a hostname, ID or unique ID prefix; default: the\n" +
			"manager answering). A host-mode port is open only on the nodes running a task\n" +
			"of the service: elsewhere BACKENDS is \"-\", and so should PROGRAMMED be. STATE\n" +
			"is ok or differs. Cells list at most 6 backends; --format json lists every\n" +
			"one, and says how each port differs.",
		Args: cli.ExactArgs(0, ""),
	}
	addMeshListing(a, cmd, []string{"SERVICE", "PROTOCOL", "PUBLISHED", "TARGET", "MODE", "BACKENDS", "PROGRAMMED", "STATE"},
		func(v meshView) (any, [][]string) {
			rows := v.ingressRows()
			table := make([][]string, 0, len(rows))
			for _, r := range rows {
				target := "-"
				if r.Target != 0 {
					target = strconv.FormatUint(uint64(r.Target), 10)
				}
				table = append(table, []string{r.Service, r.Protocol, strconv.FormatUint(uint64(r.Published), 10), target,
					cli.OrDash(r.Mode), formatBackends(r.Backends), formatBackends(r.Programmed), r.State})
			}
			return rows, table
		})
	return cmd
}

// ingressRows pairs the desired ports with the node's, and adds the host-mode ports that are not
// to be open on the node, sorted by service, protocol and published port.
func (v meshView) ingressRows() []ingressRow {
	var rows []ingressRow
	paired := map[string]bool{}
	for _, p := range pairPorts(v.want.Ports, v.resp.GetKernel().GetPorts()) {
		paired[p.Key] = true
		r := ingressRow{State: rowOK}
		if p.Want != nil {
			r.ServiceID, r.Protocol, r.Published, r.Mode = p.Want.Service, p.Want.Protocol.String(), uint32(p.Want.Published), p.Want.Mode.String()
			r.Backends = wantPortBackends(p.Want)
		} else {
			r.ServiceID, r.Protocol, r.Published, r.Mode = p.Have.GetServiceId(), p.Have.GetProtocol(), p.Have.GetPublishedPort(), p.Have.GetMode()
		}
		if p.Have != nil {
			r.Programmed = havePortBackends(p.Have)
		}
		r.Target = v.servicePort(r.ServiceID, r.Protocol, r.Published).GetTargetPort()
		for _, d := range v.portDifferences(p) {
			r.State = rowDiffers
			r.Differences = append(r.Differences, d.Detail)
		}
		rows = append(rows, r)
	}
	// The ports the services publish that the node should not open: host mode without a task
	// of the service here.
	for _, s := range v.resp.GetServices() {
		for _, p := range s.GetPorts() {
			key := protocolName(p.GetProtocol()) + "/" + strconv.FormatUint(uint64(p.GetPublishedPort()), 10)
			if p.GetPublishedPort() == 0 || paired[key] {
				continue
			}
			paired[key] = true
			rows = append(rows, ingressRow{ServiceID: s.GetId(), Protocol: protocolName(p.GetProtocol()), Published: p.GetPublishedPort(),
				Target: p.GetTargetPort(), Mode: publishModeName(p.GetPublishMode()), State: rowOK})
		}
	}
	for i := range rows {
		rows[i].Service = v.serviceName(rows[i].ServiceID)
	}
	slices.SortFunc(rows, func(x, y ingressRow) int {
		return cmp.Or(cmp.Compare(x.Service, y.Service), cmp.Compare(x.Protocol, y.Protocol), cmp.Compare(x.Published, y.Published))
	})
	return rows
}
