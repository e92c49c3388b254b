package e2e

// This file owns what the Docker tests (docker_test.go) share: the engine check, the CNI plugins
// and the echo workload image built once per run, starting a shoald that runs real containers,
// and reading the containers, sandboxes, addresses and leftovers of a service.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/moby/moby/client"
	"github.com/vishvananda/netlink"

	"github.com/shoal/shoal/internal/dockerimage"
)

// The echo workload's two images: the same program, two tags, so an image update rolls.
const (
	echoImageV1 = "shoal-e2e-echo:v1"
	echoImageV2 = "shoal-e2e-echo:v2"
)

var (
	dockerOnce sync.Once
	dockerErr  error
	dockerSkip string
	dockerCLI  *client.Client
	cniBinDir  string
)

// needDocker skips the test when no Docker engine answers (the one thing these tests cannot do
// without), and otherwise builds, once per run, shoal's CNI plugins and the echo image.
func needDocker(t *testing.T) *client.Client {
	t.Helper()
	dockerOnce.Do(func() {
		cli, err := client.New(client.FromEnv)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err = cli.Ping(ctx, client.PingOptions{})
			cancel()
		}
		if err != nil {
			dockerSkip = fmt.Sprintf("no Docker engine answers (%v): these tests run real containers", err)
			return
		}
		dockerCLI = cli
		// The pause image the nodes build on first use goes with the run, unless a container
		// still uses it.
		atExit = append(atExit, func() {
			list, err := cli.ImageList(context.Background(), client.ImageListOptions{Filters: make(client.Filters).Add("reference", "shoal/pause")})
			if err != nil {
				return
			}
			for _, img := range list.Items {
				_, _ = cli.ImageRemove(context.Background(), img.ID, client.ImageRemoveOptions{PruneChildren: true})
			}
		})
		cniBinDir = filepath.Join(binDir, "cni")
		build := exec.Command("go", "build", "-o", cniBinDir+"/",
			"github.com/shoal/shoal/plugins/shoal-bridge", "github.com/shoal/shoal/plugins/shoal-ipam")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			dockerErr = fmt.Errorf("build the CNI plugins: %w\n%s", err, out)
			return
		}
		build = exec.Command("go", "build", "-o", binDir+"/", "github.com/shoal/shoal/cmd/shoal-echo")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			dockerErr = fmt.Errorf("build shoal-echo: %w\n%s", err, out)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, ref := range []string{echoImageV1, echoImageV2} {
			files := map[string]string{"/shoal-echo": filepath.Join(binDir, "shoal-echo")}
			if err := dockerimage.Build(ctx, cli, ref, files, []string{"/shoal-echo"}, map[string]string{"dev.shoal.e2e": "true", "dev.shoal.e2e.tag": ref}); err != nil {
				dockerErr = fmt.Errorf("build image %s: %w", ref, err)
				return
			}
			atExit = append(atExit, func() {
				_, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
			})
		}
	})
	if dockerSkip != "" {
		t.Skip(dockerSkip)
	}
	if dockerErr != nil {
		t.Fatal(dockerErr)
	}
	return dockerCLI
}

// dockerFlags are the flags of a shoald that runs real containers in this test run.
func dockerFlags() []string {
	return []string{"--executor", "docker", "--cni-bin-dir", cniBinDir, "--pull", "never"}
}

// uniqueName is name with a suffix unique to this run, for services and networks whose names
// end up in container and bridge names shared with the whole host.
func uniqueName(name string) string {
	return fmt.Sprintf("%s-%d%03d%02d", name, os.Getpid()%10000, testNet.Add(0), uniqueSeq.Add(1)%100)
}

var uniqueSeq atomic.Int32

// container is one of a service's containers as the engine has it.
type container struct {
	ID, Name, Role, TaskID, Slot string
	Running                      bool
	Pid                          int
}

// containers lists the containers (tasks and sandboxes) of a service, by the ownership labels.
func containers(t *testing.T, cli *client.Client, service string) []container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", "dev.shoal.service.name="+service)})
	if err != nil {
		t.Fatalf("list the containers of %s: %v", service, err)
	}
	var out []container
	for _, c := range list.Items {
		ct := container{ID: c.ID, Role: c.Labels["dev.shoal.role"], TaskID: c.Labels["dev.shoal.task.id"], Slot: c.Labels["dev.shoal.slot"],
			Running: c.State == "running"}
		if len(c.Names) > 0 {
			ct.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		if ct.Running {
			insp, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err == nil && insp.Container.State != nil {
				ct.Pid = insp.Container.State.Pid
			}
		}
		out = append(out, ct)
	}
	return out
}

// removeServiceContainers removes whatever containers of service a failed test left.
func removeServiceContainers(cli *client.Client, service string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", "dev.shoal.service.name="+service)})
	if err != nil {
		return
	}
	for _, c := range list.Items {
		_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	}
}

// eth0Addrs are the IPv4 addresses on eth0 inside the network namespace of process pid.
func eth0Addrs(pid int) ([]string, error) {
	netns, err := ns.GetNS(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, err
	}
	defer netns.Close()
	var out []string
	err = netns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			out = append(out, a.IPNet.String())
		}
		return nil
	})
	return out, err
}

// identity is what shoal-echo answers on GET /.
type identity struct {
	Hostname string `json:"hostname"`
	Slot     string `json:"slot"`
	IP       string `json:"ip"`
	Task     string `json:"task"`
	Service  string `json:"service"`
	Peer     string `json:"peer"`
}

// ask fetches the identity of the echo server at addr ("198.18.0.5/24" or a bare address).
func ask(addr string) (identity, error) {
	var id identity
	if p, err := netip.ParsePrefix(addr); err == nil {
		addr = p.Addr().String()
	}
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + addr + ":8080/")
	if err != nil {
		return id, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return id, err
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, fmt.Errorf("answer %q: %w", b, err)
	}
	return id, nil
}

// bridgeLinks are the names of the links enslaved to the Linux bridge named bridge, nil if it
// does not exist.
func bridgeLinks(bridge string) ([]string, error) {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		if _, ok := err.(netlink.LinkNotFoundError); ok {
			return nil, nil
		}
		return nil, err
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// attachmentFiles lists the files node n keeps per task attachment: its CNI cache (results and
// configs per attachment) and its tasks' netns pins.
func (c *cluster) attachmentFiles(n int) []string {
	var out []string
	for _, sub := range []string{"cni", "netns"} {
		_ = filepath.WalkDir(filepath.Join(c.node(n).dir, sub), func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}
