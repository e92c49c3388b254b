package ctlconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal/shoal/api"
)

// parsed returns the options of a root command given args.
func parsed(t *testing.T, args ...string) *Options {
	t.Helper()
	root := &cobra.Command{Use: "ctl", RunE: func(*cobra.Command, []string) error { return nil }}
	o := AddFlags(root)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestSocketPath(t *testing.T) {
	tests := []struct {
		name, env string
		args      []string
		want      string
	}{
		{name: "default", want: DefaultSocket},
		{name: "environment", env: "/run/env.sock", want: "/run/env.sock"},
		{name: "flag wins over the environment", env: "/run/env.sock", args: []string{"--socket", "unix:///run/flag.sock"}, want: "/run/flag.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(SocketEnv, tt.env)
			if got := parsed(t, tt.args...).SocketPath(); got != tt.want {
				t.Errorf("SocketPath() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--timeout", "0s"}, "invalid --timeout 0s: must be positive"},
		{[]string{"--socket", ""}, "invalid --socket: the path is empty"},
	} {
		t.Setenv(SocketEnv, "")
		err := parsed(t, tt.args...).WithClient(func(api.ControlClient) error {
			t.Error("connected with bad flags")
			return nil
		})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%v: error %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	o := parsed(t, "--socket", sock, "--timeout", "2s")
	err := o.WithControl(context.Background(), func(ctx context.Context, c api.ControlClient) error {
		_, err := c.GetCluster(ctx, &api.GetClusterRequest{})
		return fmt.Errorf("get cluster: %w", err)
	})
	if !IsUnreachable(err) || status.Code(err) != codes.Unavailable {
		t.Fatalf("error %v (%v), want an unreachable manager", err, status.Code(err))
	}
	// Reported on its own: the other failures are the same one.
	var out bytes.Buffer
	PrintError(&out, errors.Join(errors.New("get node a: not found"), err))
	want := "Error: cannot reach the shoal manager at " + sock +
		": connect: no such file or directory (is shoald running? set --socket or SHOAL_SOCKET)\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}

func TestPrintErrorJoined(t *testing.T) {
	var out bytes.Buffer
	PrintError(&out, errors.Join(errors.New("get node a: not found"), errors.New("get node b: not found")))
	if want := "Error: get node a: not found\nError: get node b: not found\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
}
