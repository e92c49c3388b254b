package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// webSpecWith is the web fixture's spec changed by edit.
func webSpecWith(edit func(s *api.ServiceSpec)) *api.ServiceSpec {
	s := webSpec()
	edit(s)
	return s
}

func TestServiceUpdateChangesOnlyNamedFields(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		conflicts int
		want      []*api.UpdateServiceRequest
	}{
		{
			name: "image",
			args: []string{"--image", "nginx:1.28", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20,
				Spec: webSpecWith(func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:1.28" })}},
		},
		{
			name: "env: removals first, an added key replaces in place",
			args: []string{"--env-add", "B=3", "--env-add", "C=4", "--env-rm", "A", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20,
				Spec: webSpecWith(func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"B=3", "C=4"} })}},
		},
		{
			name: "labels and constraints",
			args: []string{"--label-add", "tier=1", "--label-rm", "team", "--constraint-rm", "node.labels.zone==a",
				"--constraint-add", "node.role==worker", "--container-label-add", "c=d", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20,
				Spec: webSpecWith(func(s *api.ServiceSpec) {
					s.Annotations.Labels = map[string]string{"tier": "1"}
					s.Task.Placement.Constraints = []string{"node.role==worker"}
					s.Task.Container.Labels = map[string]string{"c": "d"}
				})}},
		},
		{
			name: "ports: remove by published port, add",
			args: []string{"--publish-rm", "5353/udp", "--publish-add", "8443:443", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20,
				Spec: webSpecWith(func(s *api.ServiceSpec) {
					s.Endpoint.Ports = []*api.PortConfig{
						{TargetPort: 80, PublishedPort: 8080},
						{TargetPort: 443, PublishedPort: 8443},
					}
				})}},
		},
		{
			name: "ports: re-adding a published port changes its target in place",
			args: []string{"--publish-add", "published=8080,target=81", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20,
				Spec: webSpecWith(func(s *api.ServiceSpec) { s.Endpoint.Ports[0].TargetPort = 81 })}},
		},
		{
			name: "mounts, networks and placement preferences",
			args: []string{"--mount-add", "type=tmpfs,target=/tmp", "--network-add", "front",
				"--placement-pref-add", "spread=node.labels.rack", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20,
				Spec: webSpecWith(func(s *api.ServiceSpec) {
					s.Task.Container.Mounts = []*api.Mount{{Type: api.Mount_TYPE_TMPFS, Target: "/tmp"}}
					s.Task.Networks = []*api.NetworkAttachmentConfig{{Target: "front"}}
					s.Task.Placement.Preferences = []*api.PlacementPreference{{Spread: "node.labels.rack"}}
				})}},
		},
		{
			name: "scalars",
			args: []string{"--replicas", "5", "--limit-memory", "1g", "--update-parallelism", "0",
				"--restart-condition", "none", "-w", "/app", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20,
				Spec: webSpecWith(func(s *api.ServiceSpec) {
					s.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 5}}
					s.Task.Resources = &api.ResourceRequirements{Limits: &api.Resources{MemoryBytes: 1 << 30}}
					s.Update.Parallelism = 0
					s.Task.Restart = &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_NONE}
					s.Task.Container.Dir = "/app"
				})}},
		},
		{
			name: "force bumps force_update",
			args: []string{"--force", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20,
				Spec: webSpecWith(func(s *api.ServiceSpec) { s.Task.ForceUpdate = 1 })}},
		},
		{
			name: "no change sends nothing",
			args: []string{"--replicas", "3", "--mount-rm", "/none", "--env-add", "A=1", "web"},
		},
		{
			name: "rollback sends no spec",
			args: []string{"--rollback", "web"},
			want: []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20, Rollback: true}},
		},
		{
			name:      "version conflict: re-read and retry once",
			args:      []string{"--image", "nginx:1.28", "web"},
			conflicts: 1,
			want: []*api.UpdateServiceRequest{
				{ServiceId: idWeb, ServiceVersion: 20,
					Spec: webSpecWith(func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:1.28" })},
				{ServiceId: idWeb, ServiceVersion: 21,
					Spec: webSpecWith(func(s *api.ServiceSpec) { s.Task.Container.Image = "nginx:1.28" })},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServices()
			f.serviceConflicts = tt.conflicts
			res := shoalctl(t, serve(t, f), append([]string{"service", "update", "-d"}, tt.args...)...)
			if res.Code != 0 || res.Stdout != "web\n" || res.Stderr != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
			}
			checkRequests(t, f, "UpdateService", &f.serviceUpdates, tt.want)
		})
	}
}

func TestServiceUpdateErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string
		wantRPCs   bool
	}{
		{
			name:       "rollback with other changes",
			args:       []string{"--rollback", "--image", "x", "--force", "web"},
			wantStderr: "Error: --rollback returns to the previous spec and can't be combined with --image, --force\n",
		},
		{
			name:       "replicas of a global service",
			args:       []string{"--replicas", "2", "api"},
			wantStderr: "Error: invalid --replicas \"2\": a global service runs one task per node; replicas apply to replicated services only\n",
			wantRPCs:   true,
		},
		{
			name:       "env-rm with a value",
			args:       []string{"--env-rm", "A=1", "web"},
			wantStderr: "Error: invalid --env-rm \"A=1\": want a key, without a value\n",
			wantRPCs:   true,
		},
		{
			name:       "publish-rm of nothing like a port",
			args:       []string{"--publish-rm", "http", "web"},
			wantStderr: "Error: invalid --publish-rm \"http\": want PUBLISHED:TARGET[/PROTOCOL] or published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]\n",
			wantRPCs:   true,
		},
		{
			name:       "mount-rm of a relative path",
			args:       []string{"--mount-rm", "tmp", "web"},
			wantStderr: "Error: invalid --mount-rm \"tmp\": want the mount's target, an absolute path\n",
			wantRPCs:   true,
		},
		{
			name:       "unknown service",
			args:       []string{"--image", "x", "nope"},
			wantStderr: "Error: get service nope: service \"nope\" not found\n",
			wantRPCs:   true,
		},
		{
			name:       "mode is create's",
			args:       []string{"--mode", "global", "web"},
			wantStderr: "Error: unknown flag: --mode\nSee 'shoalctl service update --help'.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServices()
			res := shoalctl(t, serve(t, f), append([]string{"service", "update", "-d"}, tt.args...)...)
			res.Check(t, 1, "", tt.wantStderr)
			if calls := f.callNames(); tt.wantRPCs == (len(calls) == 0) || slices.Contains(calls, "UpdateService") {
				t.Errorf("RPCs made: %v", calls)
			}
		})
	}
}

func TestServiceScale(t *testing.T) {
	scaledWeb := func(n uint64) *api.UpdateServiceRequest {
		return &api.UpdateServiceRequest{ServiceId: idWeb, ServiceVersion: 20, Spec: webSpecWith(func(s *api.ServiceSpec) {
			s.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: n}}
		})}
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
		want       []*api.UpdateServiceRequest
	}{
		{
			name:       "one service",
			args:       []string{"web=5"},
			wantStdout: "web scaled to 5\n",
			want:       []*api.UpdateServiceRequest{scaledWeb(5)},
		},
		{
			name:       "to zero, by ID prefix",
			args:       []string{"websvc=0"},
			wantStdout: "websvc scaled to 0\n",
			want:       []*api.UpdateServiceRequest{scaledWeb(0)},
		},
		{
			name:       "unchanged sends nothing",
			args:       []string{"web=3"},
			wantStdout: "web scaled to 3\n",
		},
		{
			name:       "a global service fails, the others scale",
			args:       []string{"api=2", "ghost=1", "web=4"},
			wantCode:   1,
			wantStdout: "web scaled to 4\n",
			wantStderr: "Error: scale service api: the service is global: it runs one task per node and can't be scaled\n" +
				"Error: get service ghost: service \"ghost\" not found\n",
			want: []*api.UpdateServiceRequest{scaledWeb(4)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServices()
			res := shoalctl(t, serve(t, f), append([]string{"service", "scale", "--detach"}, tt.args...)...)
			res.Check(t, tt.wantCode, tt.wantStdout, tt.wantStderr)
			checkRequests(t, f, "UpdateService", &f.serviceUpdates, tt.want)
		})
	}
}

func TestServiceScaleBadArguments(t *testing.T) {
	tests := []struct {
		arg, want string
	}{
		{"web", `invalid scale argument "web": want SERVICE=REPLICAS`},
		{"web=", `invalid scale argument "web=": want SERVICE=REPLICAS`},
		{"=3", `invalid scale argument "=3": want SERVICE=REPLICAS`},
		{"web=-1", `invalid scale argument "web=-1": replicas must not be negative`},
		{"web=x", `invalid scale argument "web=x": replicas want a whole number`},
		{"web=1.5", `invalid scale argument "web=1.5": replicas want a whole number`},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			f := newFakeServices()
			// A good argument first: nothing is sent when any is bad.
			res := shoalctl(t, serve(t, f), "service", "scale", "api=1", tt.arg)
			if res.Code != 1 || res.Stderr != "Error: "+tt.want+"\n" {
				t.Errorf("exit %d, stderr %q; want exit 1, stderr %q", res.Code, res.Stderr, "Error: "+tt.want+"\n")
			}
			if calls := f.callNames(); len(calls) != 0 {
				t.Errorf("a bad argument made RPCs %v", calls)
			}
		})
	}
}

func TestServiceRollback(t *testing.T) {
	f := newFakeServices()
	sock := serve(t, f)
	res := shoalctl(t, sock, "service", "rollback", "-d", "web")
	if res.Code != 0 || res.Stdout != "web\n" || res.Stderr != "" {
		t.Fatalf("rollback web: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	checkRequests(t, f, "UpdateService", &f.serviceUpdates, []*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20, Rollback: true}})

	res = shoalctl(t, sock, "service", "rollback", "-d", "api")
	want := "Error: update service api: service api has no previous spec to roll back to\n"
	if res.Code != 1 || res.Stderr != want {
		t.Errorf("rollback api: exit %d, stderr %q; want %q", res.Code, res.Stderr, want)
	}
}

// A rollback swaps the spec and the previous spec. If spec_version moved
// between the read and the write (the updater rolled back on its own),
// retrying it would swap back to the spec just rolled away from: shoalctl
// retries only a rollback the other write did not change the meaning of.
func TestRollbackRetriesOnlyWhenTheSpecsStayed(t *testing.T) {
	autoRollback := func(svc *api.Service) {
		svc.Spec, svc.PreviousSpec = svc.PreviousSpec, svc.Spec
		svc.PreviousSpecVersion = svc.SpecVersion
		svc.SpecVersion++
		svc.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_STARTED, Message: "update rolled back"}
	}
	scale := func(svc *api.Service) {
		svc.Spec.GetReplicated().Replicas = 9
		svc.PreviousSpec.GetReplicated().Replicas = 9
	}
	for _, args := range [][]string{{"service", "rollback", "-d", "web"}, {"service", "update", "--rollback", "-d", "web"}} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			tests := []struct {
				name       string
				race       func(*api.Service)
				wantCode   int
				wantStderr string
				want       []*api.UpdateServiceRequest
			}{
				{"the updater wrote its status", nil, 0, "", []*api.UpdateServiceRequest{
					{ServiceId: idWeb, ServiceVersion: 20, Rollback: true},
					{ServiceId: idWeb, ServiceVersion: 21, Rollback: true},
				}},
				{"the updater rolled back", autoRollback, 1,
					"Error: rollback service web: it changed while the rollback was sent " +
						"(spec_version 2 is now 3: an update or a rollback started meanwhile), so it was not rolled back again; " +
						"inspect it and roll back again if still needed\n",
					[]*api.UpdateServiceRequest{{ServiceId: idWeb, ServiceVersion: 20, Rollback: true}}},
				{"someone scaled it", scale, 0, "", []*api.UpdateServiceRequest{
					{ServiceId: idWeb, ServiceVersion: 20, Rollback: true},
					{ServiceId: idWeb, ServiceVersion: 21, Rollback: true},
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					f := newFakeServices()
					f.serviceConflicts, f.serviceRace = 1, tt.race
					res := shoalctl(t, serve(t, f), args...)
					wantStdout := "web\n"
					if tt.wantCode != 0 {
						wantStdout = ""
					}
					res.Check(t, tt.wantCode, wantStdout, tt.wantStderr)
					checkRequests(t, f, "UpdateService", &f.serviceUpdates, tt.want)
				})
			}
		})
	}
}

func TestServiceRemove(t *testing.T) {
	f := newFakeServices()
	res := shoalctl(t, serve(t, f), "service", "rm", "web", "ghost", "apisvc")
	wantErr := "Error: remove service ghost: service \"ghost\" not found\n"
	res.Check(t, 1, "web\napisvc\n", wantErr)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.serviceRemovals, []string{idWeb, idAPI}) || len(f.services) != 0 {
		t.Errorf("removed %v, left %d services", f.serviceRemovals, len(f.services))
	}
}

func TestServiceInspect(t *testing.T) {
	f := newFakeServices()
	sock := serve(t, f)
	res := shoalctl(t, sock, "service", "inspect", "web", "api")
	if res.Code != 0 {
		t.Fatalf("inspect: exit %d, stderr %q", res.Code, res.Stderr)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(res.Stdout), &raws); err != nil || len(raws) != 2 {
		t.Fatalf("inspect printed %d elements (%v):\n%s", len(raws), err, res.Stdout)
	}
	for i, want := range []*api.Service{webService(), apiService()} {
		got := &api.Service{}
		if err := protojson.Unmarshal(raws[i], got); err != nil || !proto.Equal(got, want) {
			t.Errorf("element %d did not round-trip (%v):\n%v\nwant\n%v", i, err, got, want)
		}
	}

	f.mu.Lock()
	f.services[0].Spec.Task.Resources = &api.ResourceRequirements{
		Reservations: &api.Resources{NanoCpus: 1_500_000_000, MemoryBytes: 512 << 20},
	}
	f.services[0].Spec.Task.Container.Mounts = []*api.Mount{{Type: api.Mount_TYPE_BIND, Source: "/a", Target: "/b", ReadOnly: true}}
	f.services[0].UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_STATE_ROLLBACK_PAUSED, Message: "task failed"}
	f.mu.Unlock()
	res = shoalctl(t, sock, "service", "inspect", "--pretty", "web")
	if res.Code != 0 {
		t.Fatalf("inspect --pretty: exit %d, stderr %q", res.Code, res.Stderr)
	}
	checkHasLines(t, res.Stdout, []string{
		"ID: " + idWeb, "Name: web", "Labels: team=edge", "Mode: replicated", "Replicas: 3",
		"State: rollback paused", "Message: task failed", "Constraints: node.labels.zone==a",
		"Image: nginx:1.27@sha256:0123456789abcdef", "Env: A=1", "Env: B=2",
		"Mount: type=bind,source=/a,target=/b,readonly", "Reservations: 1.5 CPUs, 512MiB",
		"Condition: any", "Parallelism: 1", "On failure: pause", "Monitor: 5s (default)",
		"Endpoint mode: vip", "Port: published=8080,target=80,protocol=tcp,mode=ingress",
		"Port: published=5353,target=53,protocol=udp,mode=ingress",
	})
}
