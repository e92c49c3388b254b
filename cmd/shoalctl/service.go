package main

// This file owns the service command tree and the commands that create
// and remove a service; service_update.go changes services,
// service_list.go and service_tasks.go list services and tasks, and
// `inspect` is the one refs.go builds for nodes too. The manager resolves
// every SERVICE argument (ID, unique ID prefix or name).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newServiceCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Manage the cluster's services",
		Long: "Manage the cluster's services. SERVICE is a service ID, a unique prefix\n" +
			"of one, or a name; the manager resolves it.",
	}
	cmd.AddCommand(
		newServiceCreateCommand(a),
		newServiceListCommand(a),
		newServicePsCommand(a),
		newInspectCommand(a, "SERVICE", "services", getService, printServiceSummary),
		newServiceUpdateCommand(a),
		newServiceScaleCommand(a),
		newServiceRollbackCommand(a),
		newServiceRemoveCommand(a),
	)
	return cmd
}

// waitOptions are the flags of commands that follow a service until it
// converges.
type waitOptions struct {
	detach, quiet bool
	timeout       time.Duration
}

func addWaitFlags(cmd *cobra.Command) *waitOptions {
	w := &waitOptions{}
	flags := cmd.Flags()
	flags.BoolVarP(&w.detach, "detach", "d", false, "return at once instead of waiting for the service to converge")
	flags.BoolVarP(&w.quiet, "quiet", "q", false, "wait without printing progress")
	flags.DurationVar(&w.timeout, "wait-timeout", 0,
		"give up waiting for the service to converge after this long (0 waits until interrupted)")
	return w
}

func (w *waitOptions) check() error {
	if w.timeout < 0 {
		return fmt.Errorf("invalid --wait-timeout %v: must not be negative", w.timeout)
	}
	return nil
}

func newServiceCreateCommand(a *app) *cobra.Command {
	var (
		sf   *serviceFlags
		wait *waitOptions
	)
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND] [ARG...]",
		Short: "Create a service",
		Long: "Create a service running IMAGE; COMMAND and ARGs replace the image's\n" +
			"command. It prints the new service's ID, then follows its tasks until\n" +
			"they run (unless --detach).",
		Args: cli.RequireArgs("IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := sf.newSpec(cmd, args[0], args[1:])
			if err != nil {
				return err
			}
			if err := wait.check(); err != nil {
				return err
			}
			return a.withConnection(cmd, func(c api.ControlClient) error {
				ctx, cancel := a.callContext(cmd.Context())
				if err := sf.applyPins(spec, networkIDs(ctx, c)); err != nil {
					cancel()
					return err
				}
				resp, err := c.CreateService(ctx, &api.CreateServiceRequest{Spec: spec})
				cancel()
				if err != nil {
					return fmt.Errorf("create service: %w", err)
				}
				svc := resp.GetService()
				if svc == nil {
					return fmt.Errorf("create service: %w", errNoService)
				}
				fmt.Fprintln(a.stdout, svc.GetId())
				return a.follow(cmd, c, svc, wait, false)
			})
		},
	}
	// Flags after IMAGE belong to the command the container runs.
	cmd.Flags().SetInterspersed(false)
	sf = addServiceFlags(cmd, onCreate)
	wait = addWaitFlags(cmd)
	return cmd
}

func newServiceRemoveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rm SERVICE...",
		Aliases: []string{"remove"},
		Short:   "Remove services",
		Long: "Remove services. Their tasks are stopped and then deleted; the command\n" +
			"does not wait for that.",
		Args: cli.RequireArgs("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withControl(cmd, func(ctx context.Context, c api.ControlClient) error {
				return forEachRef(args, func(ref string) error {
					if _, err := c.RemoveService(ctx, &api.RemoveServiceRequest{ServiceId: ref}); err != nil {
						return fmt.Errorf("remove service %s: %w", ref, err)
					}
					fmt.Fprintln(a.stdout, ref)
					return nil
				})
			})
		},
	}
}

// errNoService says the manager answered a service RPC without the service.
var errNoService = errors.New("the manager answered without a service")

func getService(ctx context.Context, c api.ControlClient, ref string) (*api.Service, error) {
	resp, err := c.GetService(ctx, &api.GetServiceRequest{ServiceId: ref})
	if err != nil {
		return nil, fmt.Errorf("get service %s: %w", ref, err)
	}
	if resp.GetService() == nil {
		return nil, fmt.Errorf("get service %s: %w", ref, errNoService)
	}
	return resp.GetService(), nil
}

// changeService reads service ref and lets change build the request from
// it; a nil request means there is nothing to send. The request goes out
// with the version read; when it loses a race with another change
// (Aborted) changeService re-reads and tries once more. It returns the
// service as the manager answered, or as read when nothing was sent.
func changeService(ctx context.Context, c api.ControlClient, ref string,
	change func(svc *api.Service) (*api.UpdateServiceRequest, error)) (*api.Service, error) {
	for attempt := 1; ; attempt++ {
		svc, err := getService(ctx, c, ref)
		if err != nil {
			return nil, err
		}
		req, err := change(svc)
		if err != nil || req == nil {
			return svc, err
		}
		req.ServiceId = svc.GetId()
		req.ServiceVersion = svc.GetMeta().GetVersion()
		resp, err := c.UpdateService(ctx, req)
		if attempt == 1 && isVersionConflict(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update service %s: %w", ref, err)
		}
		if resp.GetService() != nil {
			return resp.GetService(), nil
		}
		return getService(ctx, c, svc.GetId())
	}
}
