package main

// This file owns the commands that change a service: update, scale and
// rollback. Each reads the service, changes only what it was asked to and
// sends the change with the version it read; then it follows the service
// until it converges, unless --detach.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

func newServiceUpdateCommand(a *app) *cobra.Command {
	var (
		sf              *serviceFlags
		wait            *waitOptions
		force, rollback bool
	)
	cmd := &cobra.Command{
		Use:   "update [flags] SERVICE",
		Short: "Change a service",
		Long: "Change a service: only what the flags name changes. Tasks are replaced\n" +
			"as the service's update config says; --force replaces them even when\n" +
			"nothing else changed, and --rollback returns to the previous spec.",
		Args: cli.ExactArgs(1, "SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := wait.check(); err != nil {
				return err
			}
			if err := sf.checkPins(); err != nil {
				return err
			}
			if changed := sf.changed(cmd); rollback && (len(changed) > 0 || force) {
				if force {
					changed = append(changed, "--force")
				}
				return fmt.Errorf("--rollback returns to the previous spec and can't be combined with %s",
					strings.Join(changed, ", "))
			}
			ref := args[0]
			return a.withConnection(cmd, func(c api.ControlClient) error {
				ctx, cancel := a.callContext(cmd.Context())
				rollbackOnce := rollbackRequest(ref)
				resolve := networkIDs(ctx, c)
				svc, err := changeService(ctx, c, ref, func(svc *api.Service) (*api.UpdateServiceRequest, error) {
					if rollback {
						return rollbackOnce(svc)
					}
					spec := cloneSpec(svc)
					if err := sf.edit(cmd, spec, resolve); err != nil {
						return nil, err
					}
					if force {
						task(spec).ForceUpdate++
					}
					if proto.Equal(spec, svc.GetSpec()) {
						return nil, nil // nothing changes: the service stays as it is
					}
					return &api.UpdateServiceRequest{Spec: spec}, nil
				})
				cancel()
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, ref)
				return a.follow(cmd, c, svc, wait, rollback)
			})
		},
	}
	sf = addServiceFlags(cmd, onUpdate)
	cmd.Flags().BoolVar(&force, "force", false, "replace every task even if nothing else changes")
	cmd.Flags().BoolVar(&rollback, "rollback", false, "return to the service's previous spec")
	wait = addWaitFlags(cmd)
	return cmd
}

func newServiceRollbackCommand(a *app) *cobra.Command {
	var wait *waitOptions
	cmd := &cobra.Command{
		Use:   "rollback SERVICE",
		Short: "Return a service to its previous spec",
		Args:  cli.ExactArgs(1, "SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := wait.check(); err != nil {
				return err
			}
			ref := args[0]
			return a.withConnection(cmd, func(c api.ControlClient) error {
				ctx, cancel := a.callContext(cmd.Context())
				svc, err := changeService(ctx, c, ref, rollbackRequest(ref))
				cancel()
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, ref)
				return a.follow(cmd, c, svc, wait, true)
			})
		},
	}
	wait = addWaitFlags(cmd)
	return cmd
}

// rollbackRequest is changeService's change for a rollback of the service
// ref names. A rollback swaps the spec and the previous spec: sent again
// after a version conflict over a service whose spec_version moved since
// it was first read (the updater rolled back on its own, or someone
// updated it), it would swap back to the spec just left. So it is sent
// again only when the re-read service still has the spec versions first
// read; a change that rolls no task (a scale, the updater's status) does
// not stand in its way.
func rollbackRequest(ref string) func(*api.Service) (*api.UpdateServiceRequest, error) {
	var first *api.Service
	return func(svc *api.Service) (*api.UpdateServiceRequest, error) {
		if first == nil {
			first = svc
		} else if svc.GetSpecVersion() != first.GetSpecVersion() || svc.GetPreviousSpecVersion() != first.GetPreviousSpecVersion() {
			return nil, fmt.Errorf("rollback service %s: it changed while the rollback was sent "+
				"(spec_version %d is now %d: an update or a rollback started meanwhile), so it was not rolled back again; "+
				"inspect it and roll back again if still needed", ref, first.GetSpecVersion(), svc.GetSpecVersion())
		}
		return &api.UpdateServiceRequest{Rollback: true}, nil
	}
}

// scaleTarget is one SERVICE=REPLICAS argument of scale.
type scaleTarget struct {
	ref      string
	replicas uint64
}

// parseScaleArgs parses every SERVICE=REPLICAS argument before anything is
// sent.
func parseScaleArgs(args []string) ([]scaleTarget, error) {
	targets := make([]scaleTarget, 0, len(args))
	for _, arg := range args {
		ref, count, ok := strings.Cut(arg, "=")
		if !ok || ref == "" || count == "" {
			return nil, fmt.Errorf("invalid scale argument %q: want SERVICE=REPLICAS", arg)
		}
		n, err := parseCount(count)
		if err != nil {
			return nil, fmt.Errorf("invalid scale argument %q: replicas %w", arg, err)
		}
		targets = append(targets, scaleTarget{ref: ref, replicas: n})
	}
	return targets, nil
}

// errGlobalScale refuses to scale a global service.
var errGlobalScale = errors.New("the service is global: it runs one task per node and can't be scaled")

func newServiceScaleCommand(a *app) *cobra.Command {
	var wait *waitOptions
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS...",
		Short: "Change the number of tasks of replicated services",
		Long: "Change the number of tasks of replicated services. Every argument is\n" +
			"checked before any service changes; a service that fails to scale does\n" +
			"not stop the others.",
		Args: cli.RequireArgs("SERVICE=REPLICAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := parseScaleArgs(args)
			if err != nil {
				return err
			}
			if err := wait.check(); err != nil {
				return err
			}
			return a.withConnection(cmd, func(c api.ControlClient) error {
				var (
					scaled []*api.Service
					errs   []error
				)
				for _, t := range targets {
					svc, err := a.scale(cmd.Context(), c, t)
					if isUnreachable(err) {
						return err
					}
					if err != nil {
						errs = append(errs, err)
						continue
					}
					scaled = append(scaled, svc)
				}
				for _, svc := range scaled {
					if len(scaled) > 1 && !wait.detach && !wait.quiet {
						fmt.Fprintf(a.stdout, "%s:\n", svc.GetSpec().GetAnnotations().GetName())
					}
					if err := a.follow(cmd, c, svc, wait, false); err != nil {
						errs = append(errs, err)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	wait = addWaitFlags(cmd)
	return cmd
}

// scale sets the replicas of one service.
func (a *app) scale(parent context.Context, c api.ControlClient, t scaleTarget) (*api.Service, error) {
	ctx, cancel := a.callContext(parent)
	defer cancel()
	svc, err := changeService(ctx, c, t.ref, func(svc *api.Service) (*api.UpdateServiceRequest, error) {
		if svc.GetSpec().GetGlobal() != nil {
			return nil, fmt.Errorf("scale service %s: %w", t.ref, errGlobalScale)
		}
		if svc.GetSpec().GetReplicated().GetReplicas() == t.replicas {
			return nil, nil
		}
		spec := cloneSpec(svc)
		spec.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: t.replicas}}
		return &api.UpdateServiceRequest{Spec: spec}, nil
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.stdout, "%s scaled to %s\n", t.ref, strconv.FormatUint(t.replicas, 10))
	return svc, nil
}

// cloneSpec returns a copy of svc's spec to change.
func cloneSpec(svc *api.Service) *api.ServiceSpec {
	if svc.GetSpec() == nil {
		return &api.ServiceSpec{}
	}
	return proto.Clone(svc.GetSpec()).(*api.ServiceSpec)
}
