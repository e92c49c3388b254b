package main

// This file owns `service inspect --pretty`: a service's spec and update
// status for a human, in the units the flags take (1.5 CPUs, 512MiB); the
// Networks section is service_networks.go's.

import (
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/cli"
)

// printServicePretty prints one service for a human, with the addresses
// nets holds (service_networks.go).
func printServicePretty(w io.Writer, svc *api.Service, nets *serviceNetworks) error {
	spec := svc.GetSpec()
	var f cli.Fields
	f.Add("ID", svc.GetId())
	f.Add("Name", cli.OrDash(serviceName(svc)))
	f.Add("Labels", cli.OrDash(formatLabels(spec.GetAnnotations().GetLabels())))
	f.Add("Created at", formatTime(svc.GetMeta().GetCreatedAt()))
	f.Add("Updated at", formatTime(svc.GetMeta().GetUpdatedAt()))
	f.Add("Version", strconv.FormatUint(svc.GetMeta().GetVersion(), 10))
	f.Add("Spec version", strconv.FormatUint(svc.GetSpecVersion(), 10))
	if spec.GetGlobal() != nil {
		f.Add("Mode", "global")
	} else {
		f.Add("Mode", "replicated")
		f.Add("  Replicas", strconv.FormatUint(spec.GetReplicated().GetReplicas(), 10))
	}
	if st := svc.GetUpdateStatus(); st != nil {
		f.Section("Update status")
		f.Add("  State", updateStateName(st.GetState()))
		f.Add("  Started", formatTime(st.GetStartedAt()))
		if st.GetCompletedAt() != nil {
			f.Add("  Completed", formatTime(st.GetCompletedAt()))
		}
		if st.GetMessage() != "" {
			f.Add("  Message", st.GetMessage())
		}
	}

	t := spec.GetTask()
	if p := t.GetPlacement(); len(p.GetConstraints()) > 0 || len(p.GetPreferences()) > 0 || p.GetMaxReplicas() > 0 {
		f.Section("Placement")
		if len(p.GetConstraints()) > 0 {
			f.Add("  Constraints", strings.Join(p.GetConstraints(), ", "))
		}
		for _, pref := range p.GetPreferences() {
			f.Add("  Preference", "spread="+pref.GetSpread())
		}
		if p.GetMaxReplicas() > 0 {
			f.Add("  Max replicas per node", strconv.FormatUint(p.GetMaxReplicas(), 10))
		}
	}
	addUpdateConfig(&f, "Update config", spec.GetUpdate())
	addUpdateConfig(&f, "Rollback config", spec.GetRollback())

	c := t.GetContainer()
	f.Section("Container")
	f.Add("  Image", cli.OrDash(c.GetImage()))
	if len(c.GetCommand()) > 0 {
		f.Add("  Command", strings.Join(c.GetCommand(), " "))
	}
	if len(c.GetArgs()) > 0 {
		f.Add("  Args", strings.Join(c.GetArgs(), " "))
	}
	for _, e := range c.GetEnv() {
		f.Add("  Env", e)
	}
	if c.GetDir() != "" {
		f.Add("  Workdir", c.GetDir())
	}
	if c.GetUser() != "" {
		f.Add("  User", c.GetUser())
	}
	if len(c.GetLabels()) > 0 {
		f.Add("  Labels", formatLabels(c.GetLabels()))
	}
	for _, m := range c.GetMounts() {
		f.Add("  Mount", formatMount(m))
	}
	f.Add("  Stop grace period", durationOr(c.GetStopGracePeriod(), "10s (default)"))

	if r := t.GetResources(); r.GetReservations() != nil || r.GetLimits() != nil {
		f.Section("Resources")
		if s := formatResources(r.GetReservations()); s != "" {
			f.Add("  Reservations", s)
		}
		if s := formatResources(r.GetLimits()); s != "" {
			f.Add("  Limits", s)
		}
	}
	rp := t.GetRestart()
	f.Section("Restart policy")
	f.Add("  Condition", enumName(rp.GetCondition(), restartConditions))
	f.Add("  Delay", durationOr(rp.GetDelay(), "5s (default)"))
	f.Add("  Max attempts", unlimitedIfZero(rp.GetMaxAttempts()))
	f.Add("  Window", durationOr(rp.GetWindow(), "0s (all time)"))

	nets.add(&f, spec)
	f.Add("Endpoint mode", enumName(spec.GetEndpoint().GetMode(), endpointModes))
	for _, p := range spec.GetEndpoint().GetPorts() {
		f.Add("Port", formatPort(p))
	}
	return f.Write(w)
}

func addUpdateConfig(f *cli.Fields, title string, u *api.UpdateConfig) {
	f.Section(title)
	f.Add("  Parallelism", allIfZero(u.GetParallelism()))
	f.Add("  Delay", durationOr(u.GetDelay(), "0s"))
	f.Add("  On failure", enumName(u.GetFailureAction(), updateFailureActions))
	f.Add("  Monitor", durationOr(u.GetMonitor(), "5s (default)"))
	f.Add("  Max failure ratio", strconv.FormatFloat(float64(u.GetMaxFailureRatio()), 'g', -1, 32))
	f.Add("  Order", enumName(u.GetOrder(), updateOrders))
}

func updateStateName(s api.UpdateStatus_State) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.String(), "STATE_")), "_", " ")
}

func durationOr(d *durationpb.Duration, unset string) string {
	if d == nil {
		return unset
	}
	return d.AsDuration().String()
}

func unlimitedIfZero(n uint64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatUint(n, 10)
}

func allIfZero(n uint64) string {
	if n == 0 {
		return "all at once"
	}
	return strconv.FormatUint(n, 10)
}

// formatMount prints a mount in --mount form.
func formatMount(m *api.Mount) string {
	s := "type=" + enumName(m.GetType(), mountTypes)
	if m.GetSource() != "" {
		s += ",source=" + m.GetSource()
	}
	s += ",target=" + m.GetTarget()
	if m.GetReadOnly() {
		s += ",readonly"
	}
	return s
}

// formatPort prints a port in --publish's long form.
func formatPort(p *api.PortConfig) string {
	s := ""
	if p.GetPublishedPort() != 0 {
		s = fmt.Sprintf("published=%d,", p.GetPublishedPort())
	}
	return s + fmt.Sprintf("target=%d,protocol=%s,mode=%s", p.GetTargetPort(),
		enumName(p.GetProtocol(), protocols), enumName(p.GetPublishMode(), publishModes))
}

// formatResources prints "1.5 CPUs, 512MiB", leaving out what is unset.
func formatResources(r *api.Resources) string {
	var parts []string
	if n := r.GetNanoCpus(); n > 0 {
		cpus := strings.TrimRight(strings.TrimRight(new(big.Rat).SetFrac64(n, 1e9).FloatString(9), "0"), ".")
		parts = append(parts, cpus+" CPUs")
	}
	if b := r.GetMemoryBytes(); b > 0 {
		parts = append(parts, formatBytes(b))
	}
	return strings.Join(parts, ", ")
}

// formatBytes prints a size in the largest binary unit that keeps it
// readable: 512MiB, 1.5GiB.
func formatBytes(b int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(b), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + units[i]
}
