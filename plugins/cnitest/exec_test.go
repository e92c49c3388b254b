package cnitest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
)

// pluginCall runs a plugin binary the way a runtime does, for what cnitool
// cannot express: no namespace, chosen container IDs, the error code.
type pluginCall struct {
	command     string
	containerID string
	netns       string
	ifName      string
	conf        []byte
	env         []string // added to, and overriding, the test's environment
}

// run returns the plugin's stdout, or its CNI error.
func (c pluginCall) run(plugin string) ([]byte, error) {
	args := &invoke.Args{
		Command:     c.command,
		ContainerID: c.containerID,
		NetNS:       c.netns,
		IfName:      c.ifName,
		Path:        cniPath,
	}
	env := append(args.AsEnv(), c.env...)
	return (&invoke.RawExec{Stderr: os.Stderr}).ExecPlugin(context.Background(), filepath.Join(cniPath, plugin), c.conf, env)
}

// runErr is run without the output.
func (c pluginCall) runErr(plugin string) error {
	_, err := c.run(plugin)
	return err
}

// mustResult runs an ADD and decodes its result.
func (c pluginCall) mustResult(t *testing.T, plugin string) *current.Result {
	t.Helper()
	out, err := c.run(plugin)
	if err != nil {
		t.Fatalf("%s %s: %v", plugin, c.command, err)
	}
	res, err := create.CreateFromBytes(out)
	if err != nil {
		t.Fatalf("decode %s result %s: %v", plugin, out, err)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

// errorCode returns the code of a plugin's CNI error, failing the test if err
// is not one.
func errorCode(t *testing.T, err error) uint {
	t.Helper()
	var cniErr *types.Error
	if !errors.As(err, &cniErr) {
		t.Fatalf("error = %v, want a CNI error", err)
	}
	return cniErr.Code
}
