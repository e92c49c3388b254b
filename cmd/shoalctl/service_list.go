package main

// This file owns `service ls` and the column formats the task table in
// service_tasks.go shares with it: IDs cut to 12 characters, images without
// their digest and published ports as "*:8080->80/tcp", as docker prints
// them.

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

// now is the clock task ages are measured against; tests fix it.
var now = time.Now

// shortID is id as tables show it: cut short unless noTrunc.
func shortID(id string, noTrunc bool) string {
	if noTrunc {
		return id
	}
	return cli.ShortID(id)
}

func newServiceListCommand(a *app) *cobra.Command {
	var (
		format string
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services",
		Long: "List services, sorted by name. REPLICAS counts the tasks running of\n" +
			"those meant to run.",
		Args: cli.ExactArgs(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.CheckFormat("format", format, cli.FormatTable, cli.FormatJSON); err != nil {
				return err
			}
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				resp, err := c.ListServices(ctx, &api.ListServicesRequest{})
				if err != nil {
					return fmt.Errorf("list services: %w", err)
				}
				return printListing(a.stdout, resp.GetServices(), serviceName, quiet, format, func(ss []*api.Service) error {
					return printServiceTable(a.stdout, ss, resp.GetRunning(), resp.GetDesired())
				})
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", cli.FormatTable, "output format: table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only service IDs")
	return cmd
}

func serviceName(svc *api.Service) string { return svc.GetSpec().GetAnnotations().GetName() }

// printServiceTable prints services like `docker service ls`.
func printServiceTable(w io.Writer, services []*api.Service, running, desired map[string]uint64) error {
	rows := make([][]string, 0, len(services))
	for _, svc := range services {
		spec := svc.GetSpec()
		mode := "replicated"
		if spec.GetGlobal() != nil {
			mode = "global"
		}
		replicas := fmt.Sprintf("%d/%d", running[svc.GetId()], desired[svc.GetId()])
		if max := spec.GetTask().GetPlacement().GetMaxReplicas(); max > 0 {
			replicas += fmt.Sprintf(" (max %d per node)", max)
		}
		rows = append(rows, []string{
			shortID(svc.GetId(), false),
			serviceName(svc),
			mode,
			replicas,
			imageName(spec.GetTask().GetContainer().GetImage(), false),
			formatPorts(spec.GetEndpoint().GetPorts(), api.PortConfig_PUBLISH_MODE_INGRESS),
		})
	}
	return cli.PrintTable(w, []string{"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"}, rows)
}

// imageName drops an image's digest unless noTrunc, as docker's tables do.
func imageName(image string, noTrunc bool) string {
	if noTrunc {
		return image
	}
	name, _, _ := strings.Cut(image, "@")
	return name
}

// formatPorts prints the ports published in mode as "*:8080->80/tcp".
func formatPorts(ports []*api.PortConfig, mode api.PortConfig_PublishMode) string {
	var out []string
	for _, p := range ports {
		if p.GetPublishMode() != mode {
			continue
		}
		published := "*"
		if p.GetPublishedPort() != 0 {
			published = "*:" + strconv.FormatUint(uint64(p.GetPublishedPort()), 10)
		}
		out = append(out, fmt.Sprintf("%s->%d/%s", published, p.GetTargetPort(), enumName(p.GetProtocol(), protocols)))
	}
	return strings.Join(out, ", ")
}
