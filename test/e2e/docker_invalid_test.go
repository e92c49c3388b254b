package e2e

// Bad input to the Docker executor and the CNI chain: each gives the task (in `service ps`) or
// the command a clear error, and nothing is left behind on the node.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal/shoal/agent/cni"
	"github.com/shoal/shoal/api"
)

func TestDockerBadInput(t *testing.T) {
	cli := needDocker(t)
	c := newCluster(t, dockerFlags()...)
	c.initManagers(1)
	netName, badNet := uniqueName("e2enet"), uniqueName("e2ebad")
	subnet := fmt.Sprintf("198.19.%d.0/24", 100+testNet.Add(0))
	if out, err := c.shoalctl(1, "network", "create", "--subnet", subnet, netName); err != nil {
		t.Fatalf("network create: %v\n%s", err, out)
	}
	network := c.networkByName(netName)
	bridge := cni.BridgeName(network.Id)
	c.removeFromHost(t, network)
	// The second network chains a plugin this node does not have.
	badSubnet := fmt.Sprintf("198.19.%d.0/24", 200+testNet.Add(0))
	if out, err := c.shoalctl(1, "network", "create", "--subnet", badSubnet, "--cni-plugin-json", `{"type":"shoal-e2e-not-installed"}`, badNet); err != nil {
		t.Fatalf("network create: %v\n%s", err, out)
	}
	bad := c.networkByName(badNet)
	badBridge := cni.BridgeName(bad.Id)
	c.removeFromHost(t, bad)

	cases := []struct {
		name  string
		args  []string
		wants []string // in the task's error, as `service ps` shows it
	}{
		{"missing image", []string{"--network", netName, "shoal-e2e-nosuch:1"},
			[]string{`image "shoal-e2e-nosuch:1" is not on this node`}},
		{"invalid mount", []string{"--network", netName, "--mount", "type=bind,source=/shoal-e2e-no-such-folder,target=/data", echoImageV1},
			[]string{"/shoal-e2e-no-such-folder"}},
		{"missing extra plugin", []string{"--network", badNet, echoImageV1},
			[]string{"shoal-e2e-not-installed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := uniqueName("bad")
			t.Cleanup(func() { removeServiceContainers(cli, svc) })
			args := append([]string{"service", "create", "--detach", "--name", svc, "--restart-max-attempts", "1", "--restart-delay", "100ms"}, tc.args...)
			if out, err := c.shoalctl(1, args...); err != nil {
				t.Fatalf("service create: %v\n%s", err, out)
			}
			eventually(t, 60*time.Second, "the task rejected with the reason shown", func() error {
				out, err := c.shoalctl(1, "service", "ps", "--no-trunc", svc)
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				for _, w := range append([]string{"Rejected"}, tc.wants...) {
					if !strings.Contains(out, w) {
						return fmt.Errorf("service ps does not say %q:\n%s", w, out)
					}
				}
				return nil
			})
			// Not retried forever: the restart policy allows one more task, and then no more.
			time.Sleep(2 * time.Second)
			v, err := c.view(svc)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(v.tasks); n > 2 {
				t.Errorf("%d tasks made for one slot with --restart-max-attempts 1: %s", n, v.summary())
			}
			if out, err := c.shoalctl(1, "service", "rm", svc); err != nil {
				t.Fatalf("service rm: %v\n%s", err, out)
			}
			eventually(t, 30*time.Second, "nothing left behind", func() error {
				if left := containers(t, cli, svc); len(left) > 0 {
					return fmt.Errorf("containers left: %v", left)
				}
				for _, br := range []string{bridge, badBridge} {
					if links, err := bridgeLinks(br); err != nil || len(links) > 0 {
						return fmt.Errorf("links on %s: %v (%v)", br, links, err)
					}
				}
				if files := c.attachmentFiles(1); len(files) > 0 {
					return fmt.Errorf("CNI cache entries or netns pins: %v", files)
				}
				return nil
			})
		})
	}

	// An unknown network is the command's error, and nothing is created.
	svc := uniqueName("bad")
	out, err := c.shoalctl(1, "service", "create", "--name", svc, "--network", "shoal-e2e-no-such-net", echoImageV1)
	if err == nil || !strings.Contains(out, "shoal-e2e-no-such-net") {
		t.Fatalf("service create on an unknown network: %v\n%s; want an error naming the network", err, out)
	}
	resp, err := c.control(1).ListServices(ctxT(t, 10*time.Second), &api.ListServicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(resp.Services, func(s *api.Service) bool { return s.GetSpec().GetAnnotations().GetName() == svc }) {
		t.Fatalf("service %s was created on an unknown network", svc)
	}
}
