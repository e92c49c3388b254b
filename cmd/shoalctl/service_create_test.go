package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

// fixNameSuffix makes default service names end in "-abcde".
func fixNameSuffix(t *testing.T) {
	t.Helper()
	old := serviceNameSuffix
	serviceNameSuffix = func() string { return "abcde" }
	t.Cleanup(func() { serviceNameSuffix = old })
}

// baseSpec is what `service create IMAGE` sends: docker's defaults.
func baseSpec(image string, args ...string) *api.ServiceSpec {
	return &api.ServiceSpec{
		Annotations: &api.Annotations{Name: defaultServiceName(image)},
		Task:        &api.TaskSpec{Container: &api.ContainerSpec{Image: image, Args: args}},
		Mode:        &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1}},
		Update:      &api.UpdateConfig{Parallelism: 1},
		Rollback:    &api.UpdateConfig{Parallelism: 1},
	}
}

func TestServiceCreateSpec(t *testing.T) {
	t.Setenv("SHOALCTL_TEST_TOKEN", "s3cret")
	fixNameSuffix(t)
	tests := []struct {
		name string
		args []string
		want func(s *api.ServiceSpec)
	}{
		{
			name: "image only",
			args: []string{"nginx"},
			want: func(*api.ServiceSpec) {},
		},
		{
			name: "command and its flags stay the container's",
			args: []string{"--name", "sh", "busybox", "sh", "-c", "sleep 1", "--replicas", "9"},
			want: func(s *api.ServiceSpec) {
				s.Annotations.Name = "sh"
				s.Task.Container.Image = "busybox"
				s.Task.Container.Args = []string{"sh", "-c", "sleep 1", "--replicas", "9"}
			},
		},
		{
			name: "container, labels and env",
			args: []string{"--name", "web", "--replicas", "5", "-e", "A=1", "--env", "B=x=y", "--env", "A=3",
				"--env", "SHOALCTL_TEST_TOKEN", "-l", "team=edge", "--label", "flag", "--container-label", "c=d",
				"-w", "/srv", "-u", "www:www", "--stop-grace-period", "30s", "nginx:1.27"},
			want: func(s *api.ServiceSpec) {
				s.Annotations = &api.Annotations{Name: "web", Labels: map[string]string{"team": "edge", "flag": ""}}
				s.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 5}}
				s.Task.Container = &api.ContainerSpec{
					Image:           "nginx:1.27",
					Env:             []string{"A=3", "B=x=y", "SHOALCTL_TEST_TOKEN=s3cret"},
					Dir:             "/srv",
					User:            "www:www",
					Labels:          map[string]string{"c": "d"},
					StopGracePeriod: durationpb.New(30 * time.Second),
				}
			},
		},
		{
			name: "mounts",
			args: []string{"--mount", "type=bind,source=/data,target=/var/data,readonly",
				"--mount", "target=/cache", "--mount", "type=tmpfs,dst=/tmp,ro=false",
				"--mount", "type=volume,src=logs,target=/logs,readonly=true", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Task.Container.Mounts = []*api.Mount{
					{Type: api.Mount_TYPE_BIND, Source: "/data", Target: "/var/data", ReadOnly: true},
					{Type: api.Mount_TYPE_VOLUME, Target: "/cache"},
					{Type: api.Mount_TYPE_TMPFS, Target: "/tmp"},
					{Type: api.Mount_TYPE_VOLUME, Source: "logs", Target: "/logs", ReadOnly: true},
				}
			},
		},
		{
			name: "placement",
			args: []string{"--constraint", "node.labels.zone == a", "--constraint", "node.role!=manager",
				"--placement-pref", "spread=node.labels.zone", "--replicas-max-per-node", "2", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Task.Placement = &api.Placement{
					Constraints: []string{"node.labels.zone==a", "node.role!=manager"},
					Preferences: []*api.PlacementPreference{{Spread: "node.labels.zone"}},
					MaxReplicas: 2,
				}
			},
		},
		{
			name: "resources",
			args: []string{"--reserve-cpu", "0.25", "--limit-cpu", "1.5", "--reserve-memory", "512m",
				"--limit-memory", "1.5GiB", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Task.Resources = &api.ResourceRequirements{
					Reservations: &api.Resources{NanoCpus: 250_000_000, MemoryBytes: 512 << 20},
					Limits:       &api.Resources{NanoCpus: 1_500_000_000, MemoryBytes: 3 << 29},
				}
			},
		},
		{
			// As shoald reads --sim-memory: every unit a power of 1024.
			name: "memory in GB",
			args: []string{"--reserve-memory", "4GB", "--limit-memory", "8gb", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Task.Resources = &api.ResourceRequirements{
					Reservations: &api.Resources{MemoryBytes: 4 << 30},
					Limits:       &api.Resources{MemoryBytes: 8 << 30},
				}
			},
		},
		{
			name: "restart policy",
			args: []string{"--restart-condition", "on-failure", "--restart-delay", "10s",
				"--restart-max-attempts", "3", "--restart-window", "2m", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Task.Restart = &api.RestartPolicy{
					Condition:   api.RestartPolicy_CONDITION_ON_FAILURE,
					Delay:       durationpb.New(10 * time.Second),
					MaxAttempts: 3,
					Window:      durationpb.New(2 * time.Minute),
				}
			},
		},
		{
			name: "update and rollback configs",
			args: []string{"--update-parallelism", "2", "--update-delay", "5s", "--update-failure-action", "rollback",
				"--update-monitor", "30s", "--update-max-failure-ratio", "0.2", "--update-order", "start-first",
				"--rollback-parallelism", "0", "--rollback-failure-action", "continue", "--rollback-order", "stop-first",
				"--rollback-monitor", "0s", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Update = &api.UpdateConfig{
					Parallelism:     2,
					Delay:           durationpb.New(5 * time.Second),
					FailureAction:   api.UpdateConfig_FAILURE_ACTION_ROLLBACK,
					Monitor:         durationpb.New(30 * time.Second),
					MaxFailureRatio: 0.2,
					Order:           api.UpdateConfig_ORDER_START_FIRST,
				}
				s.Rollback = &api.UpdateConfig{
					FailureAction: api.UpdateConfig_FAILURE_ACTION_CONTINUE,
					Monitor:       durationpb.New(0),
				}
			},
		},
		{
			name: "ports, endpoint mode and networks",
			args: []string{"-p", "8080:80", "--publish", "53/udp", "-p", "published=9000,target=9000,mode=host,protocol=udp",
				"--endpoint-mode", "dnsrr", "--network", "front", "--network", "name=back,alias=db,alias=pg", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Endpoint = &api.EndpointSpec{
					Mode: api.EndpointSpec_MODE_DNSRR,
					Ports: []*api.PortConfig{
						{TargetPort: 80, PublishedPort: 8080},
						{TargetPort: 53, Protocol: api.PortConfig_PROTOCOL_UDP},
						{TargetPort: 9000, PublishedPort: 9000, Protocol: api.PortConfig_PROTOCOL_UDP,
							PublishMode: api.PortConfig_PUBLISH_MODE_HOST},
					},
				}
				s.Task.Networks = []*api.NetworkAttachmentConfig{
					{Target: "front"},
					{Target: "back", Aliases: []string{"db", "pg"}},
				}
			},
		},
		{
			name: "global",
			args: []string{"--mode", "global", "nginx"},
			want: func(s *api.ServiceSpec) {
				s.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append([]string{"service", "create", "--detach"}, tt.args...)...)
			if res.Code != 0 || res.Stdout != idNewService+"\n" || res.Stderr != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
			}
			image := tt.args[len(tt.args)-1]
			want := baseSpec(image)
			if tt.name == "command and its flags stay the container's" {
				want = baseSpec("")
			}
			tt.want(want)
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.serviceCreates) != 1 {
				t.Fatalf("%d CreateService calls, want 1", len(f.serviceCreates))
			}
			if got := f.serviceCreates[0].GetSpec(); !proto.Equal(got, want) {
				t.Errorf("spec sent:\n%v\nwant\n%v", got, want)
			}
		})
	}
}

func TestServiceCreateBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--replicas", "-1"}, `invalid --replicas "-1": must not be negative`},
		{[]string{"--replicas", "two"}, `invalid --replicas "two": want a whole number`},
		{[]string{"--mode", "global", "--replicas", "2"}, `invalid --replicas "2": a global service runs one task per node`},
		{[]string{"--mode", "daemon"}, `invalid --mode "daemon": must be one of replicated, global`},
		{[]string{"--mode", "global", "--replicas-max-per-node", "1"}, `invalid --replicas-max-per-node "1": a global service runs one task per node already`},
		{[]string{"--name", ""}, `invalid --name "": must not be empty`},
		{[]string{"--reserve-memory", "12x"}, `invalid --reserve-memory "12x": want a size like 512m, 1g or 1.5GiB`},
		{[]string{"--limit-memory", "-1g"}, `invalid --limit-memory "-1g": want a size`},
		{[]string{"--limit-memory", "1gig"}, `invalid --limit-memory "1gig": want a size`},
		{[]string{"--reserve-cpu", "1,5"}, `invalid --reserve-cpu "1,5": want a number of CPUs like 0.5 or 2`},
		{[]string{"--limit-cpu", "0.0000000001"}, `invalid --limit-cpu "0.0000000001": too precise: at most 9 decimal places`},
		{[]string{"--restart-condition", "always"}, `invalid --restart-condition "always": must be one of any, on-failure, none`},
		{[]string{"--restart-delay", "5"}, `invalid --restart-delay "5": want a duration like 10s or 1m30s`},
		{[]string{"--restart-window", "-1m"}, `invalid --restart-window "-1m": must not be negative`},
		{[]string{"--restart-max-attempts", "1.5"}, `invalid --restart-max-attempts "1.5": want a whole number`},
		{[]string{"--update-parallelism", "-2"}, `invalid --update-parallelism "-2": must not be negative`},
		{[]string{"--update-failure-action", "stop"}, `invalid --update-failure-action "stop": must be one of pause, continue, rollback`},
		{[]string{"--rollback-failure-action", "rollback"}, `invalid --rollback-failure-action "rollback": must be one of pause, continue`},
		{[]string{"--update-max-failure-ratio", "1.5"}, `invalid --update-max-failure-ratio "1.5": want a number from 0 to 1`},
		{[]string{"--update-order", "random"}, `invalid --update-order "random": must be one of stop-first, start-first`},
		{[]string{"--rollback-monitor", "soon"}, `invalid --rollback-monitor "soon": want a duration`},
		{[]string{"--stop-grace-period", "10"}, `invalid --stop-grace-period "10": want a duration`},
		{[]string{"--endpoint-mode", "lb"}, `invalid --endpoint-mode "lb": must be one of vip, dnsrr`},
		{[]string{"--env", "=x"}, `invalid --env "=x": want KEY=VALUE with a non-empty KEY`},
		{[]string{"-e", "SHOALCTL_SURELY_UNSET"}, `invalid --env "SHOALCTL_SURELY_UNSET": SHOALCTL_SURELY_UNSET is not set in shoalctl's environment`},
		{[]string{"--label", "=v"}, `invalid --label "=v": want key=value with a non-empty key`},
		{[]string{"--container-label", "=v"}, `invalid --container-label "=v"`},
		{[]string{"--mount", "source=/a"}, `invalid --mount "source=/a": target is required`},
		{[]string{"--mount", "type=bind,target=/a"}, `invalid --mount "type=bind,target=/a": a bind mount needs an absolute source path`},
		{[]string{"--mount", "type=nfs,target=/a"}, `invalid --mount "type=nfs,target=/a": type must be one of bind, volume, tmpfs`},
		{[]string{"--mount", "type=tmpfs,source=x,target=/a"}, `invalid --mount "type=tmpfs,source=x,target=/a": a tmpfs mount takes no source`},
		{[]string{"--mount", "target=/a,size=1g"}, `invalid --mount "target=/a,size=1g": unknown field "size"`},
		{[]string{"--mount", "target=/a,readonly=maybe"}, `invalid --mount "target=/a,readonly=maybe": readonly=maybe: want true or false`},
		{[]string{"--mount", "target=relative"}, `invalid --mount "target=relative": target must be an absolute path`},
		{[]string{"--constraint", "node.labels.zone=a"}, `invalid --constraint "node.labels.zone=a": want ATTR==VALUE or ATTR!=VALUE`},
		{[]string{"--placement-pref", "pack=node.labels.zone"}, `invalid --placement-pref "pack=node.labels.zone": want spread=ATTR`},
		{[]string{"-p", "80:99999"}, `invalid --publish "80:99999": target port "99999": want a number from 1 to 65535`},
		{[]string{"-p", "0:80"}, `invalid --publish "0:80": published port "0": want a number from 1 to 65535`},
		{[]string{"-p", "8080:80/sctp"}, `invalid --publish "8080:80/sctp": protocol must be one of tcp, udp`},
		{[]string{"-p", "published=8080"}, `invalid --publish "published=8080": target is required`},
		{[]string{"-p", "published=8080,target=80,mode=vip"}, `invalid --publish "published=8080,target=80,mode=vip": mode must be one of ingress, host`},
		{[]string{"-p", "8080-8081:80"}, `invalid --publish "8080-8081:80": want PUBLISHED:TARGET[/PROTOCOL]`},
		{[]string{"--network", "name=,alias=x"}, `invalid --network "name=,alias=x": name is required`},
		{[]string{"--wait-timeout", "-1s"}, `invalid --wait-timeout -1s: must not be negative`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), append(append([]string{"service", "create"}, tt.args...), "nginx")...)
			if res.Code != 1 || !strings.HasPrefix(res.Stderr, "Error: "+tt.want) {
				t.Errorf("exit %d, stderr %q\nwant exit 1, stderr starting %q", res.Code, res.Stderr, "Error: "+tt.want)
			}
			if calls := f.callNames(); len(calls) != 0 {
				t.Errorf("a bad flag made RPCs %v", calls)
			}
		})
	}
}

func TestServiceCreateUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "create"}, "Error: \"shoalctl service create\" requires at least one IMAGE argument\n"},
		{[]string{"service", "create", "bad image"}, "Error: invalid IMAGE \"bad image\": an image reference has no white space\n"},
	} {
		f := newFakeCluster()
		res := shoalctl(t, serve(t, f), tt.args...)
		if res.Code != 1 || !strings.HasPrefix(res.Stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, res.Code, res.Stderr, tt.want)
		}
	}
}

func TestDefaultServiceName(t *testing.T) {
	fixNameSuffix(t)
	tests := []struct{ image, want string }{
		{"nginx", "nginx-abcde"},
		{"nginx:1.27@sha256:0123", "nginx-abcde"},
		{"registry:5000/team/my_app:2", "my_app-abcde"},
		{"example.com/x/Web+Api", "Web-Api-abcde"},
		{"_hidden", "hidden-abcde"},
		{"registry:5000/", "service-abcde"},
		{strings.Repeat("a", 70), strings.Repeat("a", 50) + "-abcde"},
	}
	for _, tt := range tests {
		if got := defaultServiceName(tt.image); got != tt.want {
			t.Errorf("defaultServiceName(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func TestParseNanoCPUs(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1", 1e9}, {"1.5", 1_500_000_000}, {"0.001", 1_000_000}, {"0.000000001", 1}, {"16", 16e9},
	}
	for _, tt := range tests {
		got, err := parseNanoCPUs(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseNanoCPUs(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "-1", ".5", "1/2", "1e3", "0.0000000001", "99999999999"} {
		if got, err := parseNanoCPUs(bad); err == nil {
			t.Errorf("parseNanoCPUs(%q) = %d, want an error", bad, got)
		}
	}
}
