package e2e

// Bad service specs through shoalctl and the Control API: each is refused
// with an error naming the field, and nothing is written.

import (
	"strings"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

func TestInvalidServiceSpecsChangeNothing(t *testing.T) {
	c := newCluster(t, fastRaft...)
	c.initManagers(1)
	c.createService(simSpec("existing", 1))
	c.waitConverged("existing", 1, 60*time.Second)

	for _, tc := range []struct {
		args []string
		want string // in the error output
	}{
		{[]string{"--replicas", "-1", "img"}, "--replicas"},
		{[]string{"--mode", "global", "--replicas", "3", "img"}, "--replicas"},
		{[]string{"--constraint", "node.labels.zone~eu", "img"}, "constraint"},
		{[]string{"--constraint", "node.hostname==no-such-node", "img"}, "no-such-node"},
		{[]string{"--reserve-memory", "12zb", "img"}, "--reserve-memory"},
		{[]string{"--limit-cpu", "lots", "img"}, "--limit-cpu"},
		{[]string{"--restart-condition", "sometimes", "img"}, "--restart-condition"},
		{[]string{"--update-failure-action", "explode", "img"}, "--update-failure-action"},
		{[]string{"--env", "=nokey", "img"}, "env"},
		{[]string{"--name", "existing", "img"}, "existing"},
		{[]string{"--name", "bad name!", "img"}, "name"},
	} {
		args := append([]string{"service", "create", "--detach"}, tc.args...)
		out, err := c.shoalctl(1, args...)
		if err == nil {
			t.Errorf("shoalctl %s: accepted\n%s", strings.Join(args, " "), out)
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("shoalctl %s: error does not name %q:\n%s", strings.Join(args, " "), tc.want, out)
		}
	}

	// Through the API: a spec with no image names the field.
	bad := simSpec("noimage", 1)
	bad.Task.Container.Image = ""
	_, err := c.control(1).CreateService(ctxT(t, 5*time.Second), &api.CreateServiceRequest{Spec: bad})
	if err == nil || !strings.Contains(err.Error(), "image") {
		t.Errorf("a spec without an image: %v", err)
	}
	// An update of an unknown node's constraint changes nothing either.
	svc, err := c.service("existing")
	if err != nil {
		t.Fatal(err)
	}
	spec := svc.Spec
	spec.Task.Placement = &api.Placement{Constraints: []string{"node.id==nosuchnode"}}
	if _, err := c.control(1).UpdateService(ctxT(t, 5*time.Second), &api.UpdateServiceRequest{
		ServiceId: svc.Id, ServiceVersion: svc.Meta.Version, Spec: spec,
	}); err == nil {
		t.Errorf("an update constraining to an unknown node was accepted")
	}

	resp, err := c.control(1).ListServices(ctxT(t, 5*time.Second), &api.ListServicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Services) != 1 || resp.Services[0].Spec.Annotations.Name != "existing" {
		t.Fatalf("the refused specs wrote services: %v", resp.Services)
	}
	after, err := c.service("existing")
	if err != nil {
		t.Fatal(err)
	}
	if after.Meta.Version != svc.Meta.Version {
		t.Fatalf("a refused update changed the service (version %d → %d)", svc.Meta.Version, after.Meta.Version)
	}
}
