package cnitest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// pluginPackages are built into the temporary CNI_PATH; cnitool runs from
// there too.
var pluginPackages = []string{
	"github.com/shoal/shoal/plugins/shoal-bridge",
	"github.com/shoal/shoal/plugins/shoal-ipam",
	"github.com/containernetworking/cni/cnitool",
	"github.com/containernetworking/plugins/plugins/meta/tuning",
	"github.com/containernetworking/plugins/plugins/meta/bandwidth",
}

var (
	// cniPath holds the built binaries.
	cniPath string
	// skipReason says what this host lacks; tests skip with it when set.
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	skipReason = missingRequirement()
	if skipReason != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "shoal-cni-path-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create CNI_PATH:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildPlugins(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cniPath = dir
	if err := recordChains(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// missingRequirement returns why the tests cannot run here, or "".
func missingRequirement() string {
	if os.Geteuid() != 0 {
		return "needs root: creates network namespaces, bridges and iptables rules"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs iproute2's ip to create named network namespaces: " + err.Error()
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return "needs iptables, which shoal-bridge programs: " + err.Error()
	}
	return ""
}

func buildPlugins(dir string) error {
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pluginPackages...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	return nil
}

// requireHost skips the test when the host cannot run it.
func requireHost(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
