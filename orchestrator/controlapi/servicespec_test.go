package controlapi_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/controlapi"
)

// validSpec is the smallest spec the Control API accepts.
func validSpec(name string) *api.ServiceSpec {
	return &api.ServiceSpec{
		Annotations: &api.Annotations{Name: name},
		Task:        &api.TaskSpec{Container: &api.ContainerSpec{Image: "nginx:1"}},
		Mode:        &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 3}},
	}
}

// specCase is a change to validSpec("web") and the field its refusal must
// name (empty for a spec that must be accepted).
type specCase struct {
	name   string
	change func(s *api.ServiceSpec)
	field  string
	reason string
}

func secs(s float64) *durationpb.Duration {
	return durationpb.New(time.Duration(s * float64(time.Second)))
}

func withPorts(ports ...*api.PortConfig) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) { s.Endpoint = &api.EndpointSpec{Ports: ports} }
}

func withMounts(mounts ...*api.Mount) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) { s.Task.Container.Mounts = mounts }
}

func withConstraints(cs ...string) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) { s.Task.Placement = &api.Placement{Constraints: cs} }
}

func withResources(limits, reservations *api.Resources) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) {
		s.Task.Resources = &api.ResourceRequirements{Limits: limits, Reservations: reservations}
	}
}

func withUpdate(u *api.UpdateConfig) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) { s.Update = u }
}

// withPins attaches the spec to network front with slot pins ips and the
// range ipRange.
func withPins(ips map[uint64]string, ipRange string) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) {
		s.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "front", Ips: ips, IpRange: ipRange}}
	}
}

// global makes the spec's service global, after change.
func global(change func(*api.ServiceSpec)) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) {
		change(s)
		s.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	}
}

// both applies a then b.
func both(a, b func(*api.ServiceSpec)) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) { a(s); b(s) }
}

// invalidSpecCases are specs refused on their own, whatever the cluster.
var invalidSpecCases = []specCase{
	{"no name", func(s *api.ServiceSpec) { s.Annotations = nil }, "spec.annotations.name", "required"},
	{"name too long", func(s *api.ServiceSpec) { s.Annotations.Name = strings.Repeat("a", 64) }, "spec.annotations.name", "more than 63"},
	{"name starts with a dash", func(s *api.ServiceSpec) { s.Annotations.Name = "-web" }, "spec.annotations.name", "not a valid name"},
	{"name starts with a dot", func(s *api.ServiceSpec) { s.Annotations.Name = ".web" }, "spec.annotations.name", "not a valid name"},
	{"name with a space", func(s *api.ServiceSpec) { s.Annotations.Name = "we b" }, "spec.annotations.name", "not a valid name"},
	{"name with a slash", func(s *api.ServiceSpec) { s.Annotations.Name = "web/1" }, "spec.annotations.name", "not a valid name"},
	{"name not ASCII", func(s *api.ServiceSpec) { s.Annotations.Name = "wéb" }, "spec.annotations.name", "not a valid name"},
	{"empty label key", func(s *api.ServiceSpec) { s.Annotations.Labels = map[string]string{"": "x"} }, "spec.annotations.labels", "empty"},
	{"no mode", func(s *api.ServiceSpec) { s.Mode = nil }, "spec.mode", "replicated or global"},
	{"empty replicated mode", func(s *api.ServiceSpec) { s.Mode = &api.ServiceSpec_Replicated{} }, "spec.mode", "replicated or global"},
	{"empty global mode", func(s *api.ServiceSpec) { s.Mode = &api.ServiceSpec_Global{} }, "spec.mode", "replicated or global"},
	{"a trillion replicas", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 1e12 }, "spec.replicated.replicas",
		fmt.Sprintf("1000000000000 is more than %d, the most tasks a service may have", controlapi.MaxReplicas)},
	{"one replica too many", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = controlapi.MaxReplicas + 1 }, "spec.replicated.replicas", "is more than"},
	{"spec too large", func(s *api.ServiceSpec) {
		s.Task.Container.Env = []string{"BIG=" + strings.Repeat("x", controlapi.MaxServiceSpecBytes)}
	}, "spec", "bytes encoded"},
	{"the most replicas uint64 holds", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = math.MaxUint64 }, "spec.replicated.replicas", "is more than"},
	{"no task", func(s *api.ServiceSpec) { s.Task = nil }, "spec.task.container.image", "required"},
	{"no container", func(s *api.ServiceSpec) { s.Task.Container = nil }, "spec.task.container.image", "required"},
	{"no image", func(s *api.ServiceSpec) { s.Task.Container.Image = "" }, "spec.task.container.image", "required"},
	{"env without =", func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"A=1", "FOO"} }, "spec.task.container.env[1]", `"FOO" is not KEY=VALUE`},
	{"env with an empty key", func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"=x"} }, "spec.task.container.env[0]", "empty KEY"},
	{"relative working dir", func(s *api.ServiceSpec) { s.Task.Container.Dir = "app" }, "spec.task.container.dir", "not an absolute path"},
	{"empty container label key", func(s *api.ServiceSpec) { s.Task.Container.Labels = map[string]string{"": "x"} }, "spec.task.container.labels", "empty"},
	{"unknown mount type", withMounts(&api.Mount{Type: 9, Target: "/data"}), "spec.task.container.mounts[0].type", "not a mount type"},
	{"mount without target", withMounts(&api.Mount{Type: api.Mount_TYPE_VOLUME, Source: "vol"}), "spec.task.container.mounts[0].target", "required"},
	{"relative mount target", withMounts(&api.Mount{Type: api.Mount_TYPE_VOLUME, Target: "data"}), "spec.task.container.mounts[0].target", "not an absolute path"},
	{"bind without source", withMounts(&api.Mount{Type: api.Mount_TYPE_BIND, Target: "/data"}), "spec.task.container.mounts[0].source", "required for a bind mount"},
	{"bind with a relative source", withMounts(&api.Mount{Type: api.Mount_TYPE_BIND, Source: "srv/data", Target: "/data"}), "spec.task.container.mounts[0].source", "not an absolute path"},
	{"tmpfs with a source", withMounts(&api.Mount{Type: api.Mount_TYPE_TMPFS, Source: "/x", Target: "/tmp"}), "spec.task.container.mounts[0].source", "must be empty"},
	{"two mounts on one target", withMounts(
		&api.Mount{Type: api.Mount_TYPE_TMPFS, Target: "/data"},
		&api.Mount{Type: api.Mount_TYPE_VOLUME, Target: "/data/"},
	), "spec.task.container.mounts[1].target", "also the target of mounts[0]"},
	{"negative stop grace period", func(s *api.ServiceSpec) { s.Task.Container.StopGracePeriod = secs(-1) }, "spec.task.container.stop_grace_period", "negative"},
	{"malformed stop grace period", func(s *api.ServiceSpec) {
		s.Task.Container.StopGracePeriod = &durationpb.Duration{Seconds: -1, Nanos: 5}
	}, "spec.task.container.stop_grace_period", "not a valid duration"},
	{"negative CPU limit", withResources(&api.Resources{NanoCpus: -1}, nil), "spec.task.resources.limits.nano_cpus", "negative"},
	{"negative memory limit", withResources(&api.Resources{MemoryBytes: -1}, nil), "spec.task.resources.limits.memory_bytes", "negative"},
	{"negative CPU reservation", withResources(nil, &api.Resources{NanoCpus: -1}), "spec.task.resources.reservations.nano_cpus", "negative"},
	{"negative memory reservation", withResources(nil, &api.Resources{MemoryBytes: -1}), "spec.task.resources.reservations.memory_bytes", "negative"},
	{"CPU reservation above the limit", withResources(&api.Resources{NanoCpus: 1e9}, &api.Resources{NanoCpus: 2e9}),
		"spec.task.resources.reservations.nano_cpus", "2000000000 exceeds the limit 1000000000"},
	{"memory reservation above the limit", withResources(&api.Resources{MemoryBytes: 1 << 20}, &api.Resources{MemoryBytes: 2 << 20}),
		"spec.task.resources.reservations.memory_bytes", "exceeds the limit"},
	{"unknown restart condition", func(s *api.ServiceSpec) { s.Task.Restart = &api.RestartPolicy{Condition: 5} }, "spec.task.restart.condition", "not a restart condition"},
	{"negative restart delay", func(s *api.ServiceSpec) { s.Task.Restart = &api.RestartPolicy{Delay: secs(-1)} }, "spec.task.restart.delay", "negative"},
	{"negative restart window", func(s *api.ServiceSpec) { s.Task.Restart = &api.RestartPolicy{Window: secs(-0.5)} }, "spec.task.restart.window", "negative"},
	{"constraint without operator", withConstraints("node.hostname"), "spec.task.placement.constraints[0]", `constraint "node.hostname": unknown operator (want == or !=)`},
	{"constraint without attribute", withConstraints("==x"), "spec.task.placement.constraints[0]", "no attribute before =="},
	{"constraint without value", withConstraints("node.role==manager", "node.hostname== "), "spec.task.placement.constraints[1]", `constraint "node.hostname== ": empty value: no value after ==`},
	{"constraint with a second operator", withConstraints("node.id!==a"), "spec.task.placement.constraints[0]", `"=a" holds a second operator`},
	{"constraint on an unknown attribute", withConstraints("node.name==x"), "spec.task.placement.constraints[0]",
		`unknown attribute "node.name" (want node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.KEY or engine.labels.KEY)`},
	{"constraint on a label without key", withConstraints("node.labels.==x"), "spec.task.placement.constraints[0]", "names no label"},
	{"constraint on an engine label without key", withConstraints("engine.labels.!=x"), "spec.task.placement.constraints[0]", "names no label"},
	{"constraint with a bad role", withConstraints("node.labels.zone==a", "node.role==boss"), "spec.task.placement.constraints[1]", `manager or worker, not "boss"`},
	{"spread over a non-label", func(s *api.ServiceSpec) {
		s.Task.Placement = &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "node.labels.zone"}, {Spread: "node.hostname"}}}
	}, "spec.task.placement.preferences[1].spread", "tasks spread only over node.labels.KEY or engine.labels.KEY, not over node.hostname"},
	{"spread over an unknown attribute", func(s *api.ServiceSpec) {
		s.Task.Placement = &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "zone"}}}
	}, "spec.task.placement.preferences[0].spread", `unknown attribute "zone" (want node.labels.KEY or engine.labels.KEY)`},
	{"spread over a label without key", func(s *api.ServiceSpec) {
		s.Task.Placement = &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "engine.labels."}}}
	}, "spec.task.placement.preferences[0].spread", "names no label"},
	{"constraint refused before a preference", func(s *api.ServiceSpec) {
		s.Task.Placement = &api.Placement{Constraints: []string{"node.role=worker"}, Preferences: []*api.PlacementPreference{{Spread: ""}}}
	}, "spec.task.placement.constraints[0]", "unknown operator"},
	{"negative update delay", withUpdate(&api.UpdateConfig{Delay: secs(-1)}), "spec.update.delay", "negative"},
	{"negative update monitor", withUpdate(&api.UpdateConfig{Monitor: secs(-1)}), "spec.update.monitor", "negative"},
	{"unknown failure action", withUpdate(&api.UpdateConfig{FailureAction: 7}), "spec.update.failure_action", "not a failure action"},
	{"negative failure ratio", withUpdate(&api.UpdateConfig{MaxFailureRatio: -0.1}), "spec.update.max_failure_ratio", "not within [0, 1]"},
	{"failure ratio above 1", withUpdate(&api.UpdateConfig{MaxFailureRatio: 1.5}), "spec.update.max_failure_ratio", "not within [0, 1]"},
	{"failure ratio NaN", withUpdate(&api.UpdateConfig{MaxFailureRatio: float32(math.NaN())}), "spec.update.max_failure_ratio", "not within [0, 1]"},
	{"unknown update order", withUpdate(&api.UpdateConfig{Order: 3}), "spec.update.order", "not an update order"},
	{"rollback that rolls back", func(s *api.ServiceSpec) {
		s.Rollback = &api.UpdateConfig{FailureAction: api.UpdateConfig_FAILURE_ACTION_ROLLBACK}
	}, "spec.rollback.failure_action", "cannot roll back"},
	{"negative rollback monitor", func(s *api.ServiceSpec) { s.Rollback = &api.UpdateConfig{Monitor: secs(-2)} }, "spec.rollback.monitor", "negative"},
	{"unknown endpoint mode", func(s *api.ServiceSpec) { s.Endpoint = &api.EndpointSpec{Mode: 4} }, "spec.endpoint.mode", "not an endpoint mode"},
	{"port without target", withPorts(&api.PortConfig{PublishedPort: 80}), "spec.endpoint.ports[0].target_port", "required"},
	{"target port too high", withPorts(&api.PortConfig{TargetPort: 70000}), "spec.endpoint.ports[0].target_port", "70000 is not a port"},
	{"published port too high", withPorts(&api.PortConfig{TargetPort: 80, PublishedPort: 65536}), "spec.endpoint.ports[0].published_port", "65536 is not a port"},
	{"VXLAN's port published", withPorts(&api.PortConfig{TargetPort: 4789, PublishedPort: 4789, Protocol: api.PortConfig_PROTOCOL_UDP}), "spec.endpoint.ports[0].published_port", "4789/udp is the port of the overlay's VXLAN tunnels"},
	{"unknown protocol", withPorts(&api.PortConfig{TargetPort: 80, Protocol: 5}), "spec.endpoint.ports[0].protocol", "not a protocol"},
	{"unknown publish mode", withPorts(&api.PortConfig{TargetPort: 80, PublishMode: 3}), "spec.endpoint.ports[0].publish_mode", "not a publish mode"},
	{"one port published twice", withPorts(
		&api.PortConfig{TargetPort: 80, PublishedPort: 8080},
		&api.PortConfig{TargetPort: 81, PublishedPort: 8081},
		&api.PortConfig{TargetPort: 82, PublishedPort: 8080, PublishMode: api.PortConfig_PUBLISH_MODE_HOST},
	), "spec.endpoint.ports[2]", "port 8080/tcp is also published by ports[0]"},
	{"ingress port with dnsrr", func(s *api.ServiceSpec) {
		s.Endpoint = &api.EndpointSpec{Mode: api.EndpointSpec_MODE_DNSRR, Ports: []*api.PortConfig{{TargetPort: 80, PublishedPort: 8080}}}
	}, "spec.endpoint.ports[0]", "needs the vip endpoint mode"},
	{"start-first on a network", both(withNetworks("front"), withUpdate(&api.UpdateConfig{Order: api.UpdateConfig_ORDER_START_FIRST})),
		"spec.update.order", "one IP is never held by two tasks, so the new task cannot start before the old one stopped; use stop-first"},
	{"start-first rollback on a network", both(withNetworks("front"), func(s *api.ServiceSpec) {
		s.Rollback = &api.UpdateConfig{Order: api.UpdateConfig_ORDER_START_FIRST}
	}), "spec.rollback.order", "use stop-first"},
	{"negative ip_hold", func(s *api.ServiceSpec) { s.IpHold = secs(-60) }, "spec.ip_hold", "negative"},
	{"a pin for slot 0", withPins(map[uint64]string{1: "10.20.0.5", 0: "10.20.0.6"}, ""), "spec.task.networks[0].ips[0]", "slots number from 1"},
	{"a pin that is no address", withPins(map[uint64]string{2: "10.20.0"}, ""), "spec.task.networks[0].ips[2]", `"10.20.0" is not an IP address`},
	{"a pin with a prefix length", withPins(map[uint64]string{3: "10.20.0.5/24"}, ""), "spec.task.networks[0].ips[3]", "without a prefix length"},
	{"a pin with a zone", withPins(map[uint64]string{1: "fe80::1%eth0"}, ""), "spec.task.networks[0].ips[1]", "has a zone"},
	{"one address pinned to two slots", withPins(map[uint64]string{3: "10.20.0.5", 1: "10.20.0.5", 2: "10.20.0.6"}, ""),
		"spec.task.networks[0].ips[3]", "10.20.0.5 is pinned to slot 1 too"},
	{"one IPv6 address spelled two ways", withPins(map[uint64]string{1: "fd00:20::5", 2: "FD00:20:0::5"}, ""),
		"spec.task.networks[0].ips[2]", "fd00:20::5 is pinned to slot 1 too"},
	{"a range that does not parse", withPins(nil, "10.20.0.9-10.20.0.2"), "spec.task.networks[0].ip_range", "invalid range"},
	{"a range with host bits", withPins(nil, "10.20.0.9/29"), "spec.task.networks[0].ip_range", "host bits set"},
	{"a range shorter than the replicas", withPins(nil, "10.20.0.10-10.20.0.11"), "spec.task.networks[0].ip_range",
		"10.20.0.10-10.20.0.11 holds 2 addresses, fewer than the 3 replicas: slot 3 would have none"},
	{"a range giving a slot another slot's pin", withPins(map[uint64]string{3: "10.20.0.8"}, "10.20.0.8/30"),
		"spec.task.networks[0].ip_range", "gives slot 1 the address 10.20.0.8, which ips pins to slot 3"},
	{"pins on a global service", global(withPins(map[uint64]string{1: "10.20.0.5"}, "")), "spec.task.networks[0].ips",
		"pins are per slot; a global service has none"},
	{"a range on a global service", global(withPins(nil, "10.20.0.0/28")), "spec.task.networks[0].ip_range", "a global service has none"},
	{"pins on the second network", func(s *api.ServiceSpec) {
		s.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "back"}, {Target: "front", Ips: map[uint64]string{4: "x"}}}
	}, "spec.task.networks[1].ips[4]", "not an IP address"},
}

// validSpecCases are specs accepted on their own.
var validSpecCases = []specCase{
	{name: "smallest"},
	{name: "name of 63 characters", change: func(s *api.ServiceSpec) { s.Annotations.Name = strings.Repeat("a", 63) }},
	{name: "name with _ . and -", change: func(s *api.ServiceSpec) { s.Annotations.Name = "0web_front.v1-b" }},
	{name: "global", change: func(s *api.ServiceSpec) { s.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}} }},
	{name: "zero replicas", change: func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 0 }},
	{name: "the most replicas", change: func(s *api.ServiceSpec) { s.GetReplicated().Replicas = controlapi.MaxReplicas }},
	{name: "env with an empty value and an = in the value", change: func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"A=", "B=c=d"} }},
	{name: "mounts of every type", change: withMounts(
		&api.Mount{Type: api.Mount_TYPE_BIND, Source: "/srv/data", Target: "/data", ReadOnly: true},
		&api.Mount{Type: api.Mount_TYPE_VOLUME, Target: "/anon"},
		&api.Mount{Type: api.Mount_TYPE_VOLUME, Source: "named", Target: "/named"},
		&api.Mount{Type: api.Mount_TYPE_TMPFS, Target: "/tmp"},
	)},
	{name: "reservations equal to limits", change: withResources(&api.Resources{NanoCpus: 1e9, MemoryBytes: 1 << 20}, &api.Resources{NanoCpus: 1e9, MemoryBytes: 1 << 20})},
	{name: "reservations without limits", change: withResources(nil, &api.Resources{NanoCpus: 4e9, MemoryBytes: 1 << 30})},
	{name: "zero durations", change: func(s *api.ServiceSpec) {
		s.Task.Container.StopGracePeriod = secs(0)
		s.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_ON_FAILURE, Delay: secs(0), Window: secs(0), MaxAttempts: 3}
		s.Update = &api.UpdateConfig{Delay: secs(0), Monitor: secs(0), MaxFailureRatio: 1, Order: api.UpdateConfig_ORDER_START_FIRST,
			FailureAction: api.UpdateConfig_FAILURE_ACTION_ROLLBACK}
		s.Rollback = &api.UpdateConfig{FailureAction: api.UpdateConfig_FAILURE_ACTION_CONTINUE}
	}},
	{name: "every constraint attribute", change: withConstraints(
		"node.id!=abc", "node.hostname != host-1", "NODE.ROLE==Manager", "node.role!=worker",
		"node.platform.os==linux", "node.platform.arch!=arm64", "node.labels.zone==a", "engine.labels.Disk==ssd",
	)},
	{name: "spread preferences", change: func(s *api.ServiceSpec) {
		s.Task.Placement = &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "node.labels.zone"}, {Spread: "engine.labels.rack"}}}
	}},
	{name: "one port number over tcp and udp, unpublished ports", change: withPorts(
		&api.PortConfig{TargetPort: 53, PublishedPort: 53},
		&api.PortConfig{TargetPort: 53, PublishedPort: 53, Protocol: api.PortConfig_PROTOCOL_UDP},
		&api.PortConfig{TargetPort: 80},
		&api.PortConfig{TargetPort: 81},
	)},
	{name: "host port with dnsrr", change: func(s *api.ServiceSpec) {
		s.Endpoint = &api.EndpointSpec{Mode: api.EndpointSpec_MODE_DNSRR, Ports: []*api.PortConfig{
			{TargetPort: 80, PublishedPort: 8080, PublishMode: api.PortConfig_PUBLISH_MODE_HOST},
		}}
	}},
	{name: "highest ports", change: withPorts(&api.PortConfig{TargetPort: 65535, PublishedPort: 65535})},
	{name: "ip_hold zero and set", change: func(s *api.ServiceSpec) { s.IpHold = secs(0) }},
	{name: "stop-first on a network", change: both(withNetworks("front"), withUpdate(&api.UpdateConfig{Order: api.UpdateConfig_ORDER_STOP_FIRST}))},
	{name: "start-first without a network", change: withUpdate(&api.UpdateConfig{Order: api.UpdateConfig_ORDER_START_FIRST})},
	{name: "pins, a slot yet to come among them, and a range", change: withPins(map[uint64]string{1: "10.20.0.5", 7: "fd00:20::7"}, "10.20.0.10-10.20.0.12")},
	{name: "a range as long as the replicas", change: withPins(nil, "10.20.0.12/30")},
	{name: "a short range with pins for the slots past it", change: withPins(map[uint64]string{3: "10.20.0.50"}, "10.20.0.10-10.20.0.11")},
	{name: "a range pinning the address of a slot ips pins elsewhere", change: withPins(map[uint64]string{2: "10.20.0.50"}, "10.20.0.10-10.20.0.12")},
	{name: "a range and no replicas", change: both(withPins(nil, "10.20.0.10"), func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 0 })},
	{name: "a range for the most replicas", change: both(withPins(nil, "10.0.0.0/8"), func(s *api.ServiceSpec) { s.GetReplicated().Replicas = controlapi.MaxReplicas })},
}

func specFor(tc specCase) *api.ServiceSpec {
	s := validSpec("web")
	if tc.change != nil {
		tc.change(s)
	}
	return s
}

func TestValidateServiceSpecRefuses(t *testing.T) {
	cases := append([]specCase{{name: "nil spec", change: nil, field: "spec", reason: "missing"}}, invalidSpecCases...)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := specFor(tc)
			if i == 0 {
				spec = nil
			}
			err := controlapi.ValidateServiceSpec(spec)
			var fe *controlapi.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v (%T), want a *FieldError on %s", err, err, tc.field)
			}
			if fe.Field != tc.field {
				t.Errorf("refused field %q (%v), want %q", fe.Field, err, tc.field)
			}
			if !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", fe.Reason, tc.reason)
			}
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != tc.field+": "+fe.Reason {
				t.Errorf("as a status: %v %q, want InvalidArgument %q", st.Code(), st.Message(), tc.field+": "+fe.Reason)
			}
		})
	}
}

func TestValidateServiceSpecAccepts(t *testing.T) {
	for _, tc := range validSpecCases {
		t.Run(tc.name, func(t *testing.T) {
			if err := controlapi.ValidateServiceSpec(specFor(tc)); err != nil {
				t.Fatalf("refused a valid spec: %v", err)
			}
		})
	}
}

func TestFieldErrorCode(t *testing.T) {
	err := &controlapi.FieldError{Field: "spec.annotations.name", Reason: "taken", Code: codes.AlreadyExists}
	if st := status.Convert(err); st.Code() != codes.AlreadyExists || st.Message() != "spec.annotations.name: taken" {
		t.Errorf("status %v %q", st.Code(), st.Message())
	}
}
