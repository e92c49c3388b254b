package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnreachableSocket(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		socket     string
		args       []string
		wantReason string
	}{
		{"missing socket, node ls", filepath.Join(dir, "missing.sock"), []string{"node", "ls"}, "connect: no such file or directory"},
		{"missing socket, promote", filepath.Join(dir, "missing.sock"), []string{"node", "promote", "a", "b"}, "connect: no such file or directory"},
		{"not a socket, cluster info", notSocket, []string{"cluster", "info"}, "connect: connection refused"},
		{"unix:// prefix accepted", "unix://" + filepath.Join(dir, "missing.sock"), []string{"cluster", "join-token", "worker"}, "connect: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := shoalctl(t, tt.socket, tt.args...)
			want := "Error: cannot reach the shoal manager at " + strings.TrimPrefix(tt.socket, "unix://") + ": " +
				tt.wantReason + " (is shoald running? set --socket or SHOAL_SOCKET)\n"
			res.Check(t, 1, "", want)
		})
	}
}

func TestSocketFromEnvironment(t *testing.T) {
	sock := serve(t, newFakeCluster())
	t.Setenv(socketEnv, sock)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"node", "ls"}, &stdout, &stderr); code != 0 {
		t.Fatalf("node ls with %s set: exit %d, stderr %q", socketEnv, code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "ID ") {
		t.Errorf("node ls printed %q", stdout.String())
	}

	// --socket wins over the environment.
	missing := filepath.Join(t.TempDir(), "missing.sock")
	res := shoalctl(t, missing, "node", "ls")
	if res.Code != 1 || !strings.Contains(res.Stderr, "cannot reach the shoal manager at "+missing+":") {
		t.Errorf("--socket %s with %s set: exit %d, stderr %q", missing, socketEnv, res.Code, res.Stderr)
	}
}

func TestServerErrorsWithoutRPCNoise(t *testing.T) {
	res := shoalctl(t, serve(t, newFakeCluster()), "node", "promote", "zz")
	want := "Error: get node zz: node \"zz\" not found\n"
	if res.Code != 1 || res.Stderr != want {
		t.Errorf("exit %d, stderr %q; want exit 1, stderr %q", res.Code, res.Stderr, want)
	}
}

func TestTimeout(t *testing.T) {
	f := newFakeCluster()
	f.block = true
	res := shoalctl(t, serve(t, f), "--timeout", "500ms", "cluster", "info")
	want := "Error: get cluster: the manager did not answer in time (raise --timeout)\n"
	if res.Code != 1 || res.Stderr != want {
		t.Errorf("exit %d, stderr %q; want exit 1, stderr %q", res.Code, res.Stderr, want)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{
			name:       "bad node ls format",
			args:       []string{"node", "ls", "--format", "yaml"},
			wantStderr: "Error: invalid --format \"yaml\": must be one of table, json\n",
		},
		{
			name:       "bad cluster info format",
			args:       []string{"cluster", "info", "--format", "table"},
			wantStderr: "Error: invalid --format \"table\": must be one of pretty, json\n",
		},
		{
			name:       "bad timeout",
			args:       []string{"--timeout", "-1s", "node", "ls"},
			wantStderr: "Error: invalid --timeout -1s: must be positive\n",
		},
		{
			name:       "unknown flag",
			args:       []string{"node", "ls", "--all"},
			wantStderr: "Error: unknown flag: --all\nSee 'shoalctl node ls --help'.\n",
		},
		{
			name:       "missing NODE",
			args:       []string{"node", "rm"},
			wantStderr: "Error: \"shoalctl node rm\" requires at least one NODE argument\nSee 'shoalctl node rm --help'.\n",
		},
		{
			name:       "unknown command",
			args:       []string{"nodes"},
			wantStderr: "Error: unknown command \"nodes\" for \"shoalctl\"\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster()
			res := shoalctl(t, serve(t, f), tt.args...)
			if res.Code != 1 || !strings.HasPrefix(res.Stderr, tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want exit 1, stderr %q", res.Code, res.Stderr, tt.wantStderr)
			}
			if calls := f.callNames(); len(calls) != 0 {
				t.Errorf("a usage error made RPCs %v", calls)
			}
		})
	}
}
