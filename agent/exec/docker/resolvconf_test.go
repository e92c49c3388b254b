package docker

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"testing"

	"github.com/shoal/shoal/api"
)

// A task gets a resolv.conf naming its node's DNS server on its networks, mounted read-only over
// the container's; the file goes with the task.
func TestTaskResolvConf(t *testing.T) {
	nets := &fakeNetworks{addr: "198.18.0.7/32"}
	e := newTestExecutor(t, nets, PullMissing)
	e.cfg.ResolvConfDir = t.TempDir()
	e.cfg.Nameservers = func(task *api.Task) []netip.Addr {
		return []netip.Addr{netip.MustParseAddr("198.18.0.1")}
	}
	ctx := context.Background()
	task := echoTask(2, "-tcp", ":9000")
	ctl := mustController(t, e, task)
	if err := ctl.Prepare(ctx); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	path := e.resolvConfPath(task.Id)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the task's resolv.conf: %v", err)
	}
	want := "# written by shoal: the node's embedded DNS server on the task's networks\nnameserver 198.18.0.1\noptions ndots:0\n"
	if string(b) != want {
		t.Errorf("resolv.conf = %q, want %q", b, want)
	}
	ctr := inspect(t, task.ServiceName+".2."+task.Id)
	found := false
	for _, m := range ctr.Mounts {
		if m.Destination == "/etc/resolv.conf" {
			found = true
			if m.Source != path || m.RW {
				t.Errorf("/etc/resolv.conf mount %+v, want %s read-only", m, path)
			}
		}
	}
	if !found {
		t.Errorf("the task's container has no /etc/resolv.conf mount: %+v", ctr.Mounts)
	}
	if err := ctl.Remove(ctx); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the task's resolv.conf after Remove: %v, want it gone", err)
	}
}
