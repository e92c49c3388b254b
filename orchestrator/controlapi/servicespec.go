package controlapi

// This file owns the validation of a service spec on its own:
// ValidateServiceSpec checks fields, ranges, enums, with the scheduler's
// own parser placement constraints and preferences, and the slot pins of
// network attachments (pinspec.go: well formed, one slot per address,
// enough ip_range for the replicas); it reads nothing. What a valid spec
// may still not ask of this cluster (a taken name, a published port in
// use, a node or network that does not exist, a pin outside its network or
// held by another binding) is checked against the store in
// servicecheck.go. Every refusal is a FieldError naming the field as the
// API's protobuf spells it.

import (
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/scheduler"
)

// FieldError refuses one field of a request. Its message is "FIELD: REASON"
// with FIELD spelled as in the API's protobuf, indexes included
// ("spec.endpoint.ports[0].target_port"). As a gRPC status it carries Code,
// InvalidArgument when Code is left zero.
type FieldError struct {
	Field  string
	Reason string
	Code   codes.Code
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// GRPCStatus makes a FieldError its own gRPC status.
func (e *FieldError) GRPCStatus() *status.Status {
	code := e.Code
	if code == codes.OK {
		code = codes.InvalidArgument
	}
	return status.New(code, e.Error())
}

func invalid(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

const maxServiceNameLen = 63

// MaxReplicas is the most tasks a replicated service may ask for. The
// store holds every task in memory on every manager and the reconciler
// creates them all at once, so an unbounded count (a typo of 1e12) would
// exhaust the managers; a larger workload is split over several services.
const MaxReplicas = 100_000

// MaxServiceSpecBytes bounds a service spec's encoded size. Every task
// carries a copy of the task template, and the reconcilers, the scheduler
// and the dispatcher write thousands of tasks per raft entry: a bound here
// keeps every entry far below raft's and gRPC's message limits.
const MaxServiceSpecBytes = 32 << 10

var serviceNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidateServiceSpec checks a service spec on its own and returns nil or
// the first *FieldError found. It reads no state: checks against the
// cluster (unique name, free ports, known nodes and networks) come on top
// when the spec is written.
func ValidateServiceSpec(spec *api.ServiceSpec) error {
	if spec == nil {
		return invalid("spec", "missing")
	}
	if n := proto.Size(spec); n > MaxServiceSpecBytes {
		return invalid("spec", "%d bytes encoded, more than the %d a service spec may have (every task carries a copy)", n, MaxServiceSpecBytes)
	}
	checks := []func() error{
		func() error { return validateServiceAnnotations(spec.Annotations) },
		func() error { return validateMode(spec) },
		func() error { return validateTaskSpec("spec.task", spec.Task) },
		func() error { return validateUpdateConfig("spec.update", spec.Update, false) },
		func() error { return validateUpdateConfig("spec.rollback", spec.Rollback, true) },
		func() error { return validateNetworkUse(spec) },
		func() error { return validateDuration("spec.ip_hold", spec.IpHold) },
		func() error { return validateEndpoint("spec.endpoint", spec.Endpoint) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func validateServiceAnnotations(a *api.Annotations) error {
	name := a.GetName()
	switch {
	case name == "":
		return invalid("spec.annotations.name", "required")
	case len(name) > maxServiceNameLen:
		return invalid("spec.annotations.name", "%q is %d characters long, more than %d", name, len(name), maxServiceNameLen)
	case !serviceNamePattern.MatchString(name):
		return invalid("spec.annotations.name", "%q is not a valid name: it must start with a letter or digit and hold only letters, digits, '_', '.' and '-'", name)
	}
	return validateLabels("spec.annotations.labels", a.GetLabels())
}

func validateLabels(field string, labels map[string]string) error {
	for k := range labels {
		if k == "" {
			return invalid(field, "a label key is empty")
		}
	}
	return nil
}

func validateMode(spec *api.ServiceSpec) error {
	if spec.GetReplicated() == nil && spec.GetGlobal() == nil {
		return invalid("spec.mode", "required: replicated or global")
	}
	if n := spec.GetReplicated().GetReplicas(); n > MaxReplicas {
		return invalid("spec.replicated.replicas", "%d is more than %d, the most tasks a service may have", n, MaxReplicas)
	}
	return nil
}

func validateTaskSpec(field string, t *api.TaskSpec) error {
	if err := validateContainer(field+".container", t.GetContainer()); err != nil {
		return err
	}
	if err := validateResources(field+".resources", t.GetResources()); err != nil {
		return err
	}
	if err := validateRestart(field+".restart", t.GetRestart()); err != nil {
		return err
	}
	if err := validateAttachments(field+".networks", t.GetNetworks()); err != nil {
		return err
	}
	return validatePlacement(field+".placement", t.GetPlacement())
}

// validateAttachments checks that each network attachment names a network
// and its aliases; which network it names is found when the spec is
// written (resolveNetworkTargets).
func validateAttachments(field string, atts []*api.NetworkAttachmentConfig) error {
	for i, a := range atts {
		if a.GetTarget() == "" {
			return invalid(fmt.Sprintf("%s[%d].target", field, i), "required: a network name or ID")
		}
		for j, alias := range a.Aliases {
			if alias == "" {
				return invalid(fmt.Sprintf("%s[%d].aliases[%d]", field, i, j), "empty")
			}
		}
	}
	return nil
}

func validateContainer(field string, c *api.ContainerSpec) error {
	if c.GetImage() == "" {
		return invalid(field+".image", "required")
	}
	for i, e := range c.GetEnv() {
		key, _, ok := strings.Cut(e, "=")
		if !ok {
			return invalid(fmt.Sprintf("%s.env[%d]", field, i), "%q is not KEY=VALUE", e)
		}
		if key == "" {
			return invalid(fmt.Sprintf("%s.env[%d]", field, i), "%q has an empty KEY", e)
		}
	}
	if d := c.GetDir(); d != "" && !path.IsAbs(d) {
		return invalid(field+".dir", "%q is not an absolute path", d)
	}
	if err := validateLabels(field+".labels", c.GetLabels()); err != nil {
		return err
	}
	targets := make(map[string]int)
	for i, m := range c.GetMounts() {
		mf := fmt.Sprintf("%s.mounts[%d]", field, i)
		if err := validateMount(mf, m); err != nil {
			return err
		}
		target := path.Clean(m.Target)
		if j, dup := targets[target]; dup {
			return invalid(mf+".target", "%s is also the target of mounts[%d]", m.Target, j)
		}
		targets[target] = i
	}
	return validateDuration(field+".stop_grace_period", c.GetStopGracePeriod())
}

func validateMount(field string, m *api.Mount) error {
	if _, ok := api.Mount_Type_name[int32(m.GetType())]; !ok {
		return invalid(field+".type", "%d is not a mount type (bind, volume or tmpfs)", m.GetType())
	}
	switch {
	case m.GetTarget() == "":
		return invalid(field+".target", "required")
	case !path.IsAbs(m.Target):
		return invalid(field+".target", "%q is not an absolute path", m.Target)
	}
	switch m.Type {
	case api.Mount_TYPE_BIND:
		if m.Source == "" {
			return invalid(field+".source", "required for a bind mount")
		}
		if !path.IsAbs(m.Source) {
			return invalid(field+".source", "%q is not an absolute path, which a bind mount needs", m.Source)
		}
	case api.Mount_TYPE_TMPFS:
		if m.Source != "" {
			return invalid(field+".source", "must be empty for a tmpfs mount")
		}
	}
	return nil
}

func validateResources(field string, r *api.ResourceRequirements) error {
	lim, res := r.GetLimits(), r.GetReservations()
	for _, x := range []struct {
		field string
		value int64
	}{
		{field + ".limits.nano_cpus", lim.GetNanoCpus()},
		{field + ".limits.memory_bytes", lim.GetMemoryBytes()},
		{field + ".reservations.nano_cpus", res.GetNanoCpus()},
		{field + ".reservations.memory_bytes", res.GetMemoryBytes()},
	} {
		if x.value < 0 {
			return invalid(x.field, "%d is negative", x.value)
		}
	}
	if l, r := lim.GetNanoCpus(), res.GetNanoCpus(); l > 0 && r > l {
		return invalid(field+".reservations.nano_cpus", "%d exceeds the limit %d", r, l)
	}
	if l, r := lim.GetMemoryBytes(), res.GetMemoryBytes(); l > 0 && r > l {
		return invalid(field+".reservations.memory_bytes", "%d exceeds the limit %d", r, l)
	}
	return nil
}

func validateRestart(field string, r *api.RestartPolicy) error {
	if _, ok := api.RestartPolicy_Condition_name[int32(r.GetCondition())]; !ok {
		return invalid(field+".condition", "%d is not a restart condition (any, on-failure or none)", r.GetCondition())
	}
	if err := validateDuration(field+".delay", r.GetDelay()); err != nil {
		return err
	}
	return validateDuration(field+".window", r.GetWindow())
}

// validatePlacement refuses the first constraint or preference the
// scheduler could not parse: the scheduler owns what they mean.
func validatePlacement(field string, p *api.Placement) error {
	err := scheduler.ValidatePlacement(p)
	if pe := (*scheduler.PlacementError)(nil); errors.As(err, &pe) {
		return invalid(field+"."+pe.Field, "%v", pe.Err)
	}
	if err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

func validateUpdateConfig(field string, u *api.UpdateConfig, rollback bool) error {
	if u == nil {
		return nil
	}
	if err := validateDuration(field+".delay", u.Delay); err != nil {
		return err
	}
	if err := validateDuration(field+".monitor", u.Monitor); err != nil {
		return err
	}
	if _, ok := api.UpdateConfig_FailureAction_name[int32(u.FailureAction)]; !ok {
		return invalid(field+".failure_action", "%d is not a failure action (pause, continue or rollback)", u.FailureAction)
	}
	if rollback && u.FailureAction == api.UpdateConfig_FAILURE_ACTION_ROLLBACK {
		return invalid(field+".failure_action", "a rollback that fails cannot roll back (pause or continue)")
	}
	if r := u.MaxFailureRatio; math.IsNaN(float64(r)) || r < 0 || r > 1 {
		return invalid(field+".max_failure_ratio", "%v is not within [0, 1]", r)
	}
	if _, ok := api.UpdateConfig_Order_name[int32(u.Order)]; !ok {
		return invalid(field+".order", "%d is not an update order (stop-first or start-first)", u.Order)
	}
	return nil
}

// vxlanPort is the UDP port of the overlay's tunnels on every node: publishing it would hand the
// nodes' VXLAN traffic to a task.
const vxlanPort = 4789

func validateEndpoint(field string, e *api.EndpointSpec) error {
	if e == nil {
		return nil
	}
	if _, ok := api.EndpointSpec_Mode_name[int32(e.Mode)]; !ok {
		return invalid(field+".mode", "%d is not an endpoint mode (vip or dnsrr)", e.Mode)
	}
	published := make(map[string]int)
	for i, p := range e.Ports {
		pf := fmt.Sprintf("%s.ports[%d]", field, i)
		if err := validatePort(pf, p); err != nil {
			return err
		}
		if p.PublishedPort == 0 {
			continue
		}
		if p.PublishedPort == vxlanPort && p.Protocol == api.PortConfig_PROTOCOL_UDP {
			return invalid(pf+".published_port", "%d/udp is the port of the overlay's VXLAN tunnels on every node", vxlanPort)
		}
		if e.Mode == api.EndpointSpec_MODE_DNSRR && p.PublishMode == api.PortConfig_PUBLISH_MODE_INGRESS {
			return invalid(pf, "port %s is published in ingress mode, which needs the vip endpoint mode, not dnsrr", portName(p))
		}
		if j, dup := published[portName(p)]; dup {
			return invalid(pf, "port %s is also published by ports[%d]", portName(p), j)
		}
		published[portName(p)] = i
	}
	return nil
}

func validatePort(field string, p *api.PortConfig) error {
	switch {
	case p.TargetPort == 0:
		return invalid(field+".target_port", "required (1-65535)")
	case p.TargetPort > math.MaxUint16:
		return invalid(field+".target_port", "%d is not a port (1-65535)", p.TargetPort)
	case p.PublishedPort > math.MaxUint16:
		return invalid(field+".published_port", "%d is not a port (1-65535)", p.PublishedPort)
	}
	if _, ok := api.PortConfig_Protocol_name[int32(p.Protocol)]; !ok {
		return invalid(field+".protocol", "%d is not a protocol (tcp or udp)", p.Protocol)
	}
	if _, ok := api.PortConfig_PublishMode_name[int32(p.PublishMode)]; !ok {
		return invalid(field+".publish_mode", "%d is not a publish mode (ingress or host)", p.PublishMode)
	}
	return nil
}

// portName is a published port as operators write it: "8080/tcp".
func portName(p *api.PortConfig) string {
	proto := "tcp"
	if p.Protocol == api.PortConfig_PROTOCOL_UDP {
		proto = "udp"
	}
	return fmt.Sprintf("%d/%s", p.PublishedPort, proto)
}

func validateDuration(field string, d *durationpb.Duration) error {
	if d == nil {
		return nil
	}
	if err := d.CheckValid(); err != nil {
		return invalid(field, "not a valid duration: %v", err)
	}
	if d.AsDuration() < 0 {
		return invalid(field, "%v is negative", d.AsDuration())
	}
	return nil
}
