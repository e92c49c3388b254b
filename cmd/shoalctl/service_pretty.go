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
)

// printServicePretty prints one service for a human, with the addresses
// nets holds (service_networks.go).
func printServicePretty(w io.Writer, svc *api.Service, nets *serviceNetworks) error {
	spec := svc.GetSpec()
	var f fieldList
	f.add("ID", svc.GetId())
	f.add("Name", orDash(serviceName(svc)))
	f.add("Labels", orDash(formatLabels(spec.GetAnnotations().GetLabels())))
	f.add("Created at", formatTime(svc.GetMeta().GetCreatedAt()))
	f.add("Updated at", formatTime(svc.GetMeta().GetUpdatedAt()))
	f.add("Version", strconv.FormatUint(svc.GetMeta().GetVersion(), 10))
	f.add("Spec version", strconv.FormatUint(svc.GetSpecVersion(), 10))
	if spec.GetGlobal() != nil {
		f.add("Mode", "global")
	} else {
		f.add("Mode", "replicated")
		f.add("  Replicas", strconv.FormatUint(spec.GetReplicated().GetReplicas(), 10))
	}
	if st := svc.GetUpdateStatus(); st != nil {
		f.section("Update status")
		f.add("  State", updateStateName(st.GetState()))
		f.add("  Started", formatTime(st.GetStartedAt()))
		if st.GetCompletedAt() != nil {
			f.add("  Completed", formatTime(st.GetCompletedAt()))
		}
		if st.GetMessage() != "" {
			f.add("  Message", st.GetMessage())
		}
	}

	t := spec.GetTask()
	if p := t.GetPlacement(); len(p.GetConstraints()) > 0 || len(p.GetPreferences()) > 0 || p.GetMaxReplicas() > 0 {
		f.section("Placement")
		if len(p.GetConstraints()) > 0 {
			f.add("  Constraints", strings.Join(p.GetConstraints(), ", "))
		}
		for _, pref := range p.GetPreferences() {
			f.add("  Preference", "spread="+pref.GetSpread())
		}
		if p.GetMaxReplicas() > 0 {
			f.add("  Max replicas per node", strconv.FormatUint(p.GetMaxReplicas(), 10))
		}
	}
	addUpdateConfig(&f, "Update config", spec.GetUpdate())
	addUpdateConfig(&f, "Rollback config", spec.GetRollback())

	c := t.GetContainer()
	f.section("Container")
	f.add("  Image", orDash(c.GetImage()))
	if len(c.GetCommand()) > 0 {
		f.add("  Command", strings.Join(c.GetCommand(), " "))
	}
	if len(c.GetArgs()) > 0 {
		f.add("  Args", strings.Join(c.GetArgs(), " "))
	}
	for _, e := range c.GetEnv() {
		f.add("  Env", e)
	}
	if c.GetDir() != "" {
		f.add("  Workdir", c.GetDir())
	}
	if c.GetUser() != "" {
		f.add("  User", c.GetUser())
	}
	if len(c.GetLabels()) > 0 {
		f.add("  Labels", formatLabels(c.GetLabels()))
	}
	for _, m := range c.GetMounts() {
		f.add("  Mount", formatMount(m))
	}
	f.add("  Stop grace period", durationOr(c.GetStopGracePeriod(), "10s (default)"))

	if r := t.GetResources(); r.GetReservations() != nil || r.GetLimits() != nil {
		f.section("Resources")
		if s := formatResources(r.GetReservations()); s != "" {
			f.add("  Reservations", s)
		}
		if s := formatResources(r.GetLimits()); s != "" {
			f.add("  Limits", s)
		}
	}
	rp := t.GetRestart()
	f.section("Restart policy")
	f.add("  Condition", enumName(rp.GetCondition(), restartConditions))
	f.add("  Delay", durationOr(rp.GetDelay(), "5s (default)"))
	f.add("  Max attempts", unlimitedIfZero(rp.GetMaxAttempts()))
	f.add("  Window", durationOr(rp.GetWindow(), "0s (all time)"))

	nets.add(&f, spec)
	f.add("Endpoint mode", enumName(spec.GetEndpoint().GetMode(), endpointModes))
	for _, p := range spec.GetEndpoint().GetPorts() {
		f.add("Port", formatPort(p))
	}
	return f.write(w)
}

func addUpdateConfig(f *fieldList, title string, u *api.UpdateConfig) {
	f.section(title)
	f.add("  Parallelism", allIfZero(u.GetParallelism()))
	f.add("  Delay", durationOr(u.GetDelay(), "0s"))
	f.add("  On failure", enumName(u.GetFailureAction(), updateFailureActions))
	f.add("  Monitor", durationOr(u.GetMonitor(), "5s (default)"))
	f.add("  Max failure ratio", strconv.FormatFloat(float64(u.GetMaxFailureRatio()), 'g', -1, 32))
	f.add("  Order", enumName(u.GetOrder(), updateOrders))
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
