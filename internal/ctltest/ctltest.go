// Package ctltest is what the operator CLIs' tests (shoalctl, netctl)
// share: serving a fake Control service on a unix socket, resolving names
// and listing bindings the way the manager does, and running a CLI and
// checking what it printed. Each CLI keeps its own fake Control service,
// with the RPCs and scripted behaviour its tests need; this package serves
// it and answers the parts they answer alike.
//
// It imports the project's api package only, and is for tests only.
package ctltest

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal/shoal/api"
)

// Serve starts srv on a unix socket in a temporary directory and returns
// the socket's path. The server stops and the directory goes when the test
// ends.
func Serve(t testing.TB, srv api.ControlServer) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "control.sock")
	if len(sock) > 100 { // sun_path holds 108 bytes
		short, err := os.MkdirTemp("", "ctltest")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(short) })
		sock = filepath.Join(short, "control.sock")
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen on %s: %v", sock, err)
	}
	gs := grpc.NewServer()
	api.RegisterControlServer(gs, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return sock
}

// FindRef resolves ref like the manager: an ID, a name (name gives an
// object's) or a unique ID prefix. Not found is NotFound, an ambiguous
// prefix InvalidArgument.
func FindRef[T interface{ GetId() string }](kind, ref string, objs []T, name func(T) string) (T, error) {
	var zero T
	var prefixed []T
	for _, o := range objs {
		if o.GetId() == ref || name(o) == ref {
			return o, nil
		}
		if strings.HasPrefix(o.GetId(), ref) {
			prefixed = append(prefixed, o)
		}
	}
	switch len(prefixed) {
	case 0:
		return zero, status.Errorf(codes.NotFound, "%s %q not found", kind, ref)
	case 1:
		return prefixed[0], nil
	}
	return zero, status.Errorf(codes.InvalidArgument, "%s prefix %q is ambiguous", kind, ref)
}

// ServiceName is a service's name, for FindRef.
func ServiceName(s *api.Service) string { return s.GetSpec().GetAnnotations().GetName() }

// NetworkName is a network's name, for FindRef.
func NetworkName(n *api.Network) string { return n.GetSpec().GetAnnotations().GetName() }

// ListBindings answers req over bindings as the manager does: only the
// bindings of the services and on the networks it names (by ID, name or
// unique ID prefix, resolved in services and networks), each a copy.
func ListBindings(req *api.ListBindingsRequest, services []*api.Service, networks []*api.Network, bindings []*api.IPBinding) (*api.ListBindingsResponse, error) {
	var serviceIDs, networkIDs []string
	for _, ref := range req.GetServiceIds() {
		svc, err := FindRef("service", ref, services, ServiceName)
		if err != nil {
			return nil, err
		}
		serviceIDs = append(serviceIDs, svc.GetId())
	}
	for _, ref := range req.GetNetworkIds() {
		n, err := FindRef("network", ref, networks, NetworkName)
		if err != nil {
			return nil, err
		}
		networkIDs = append(networkIDs, n.GetId())
	}
	resp := &api.ListBindingsResponse{}
	for _, b := range bindings {
		if (len(serviceIDs) == 0 || slices.Contains(serviceIDs, b.GetServiceId())) &&
			(len(networkIDs) == 0 || slices.Contains(networkIDs, b.GetNetworkId())) {
			resp.Bindings = append(resp.Bindings, proto.Clone(b).(*api.IPBinding))
		}
	}
	return resp, nil
}

// Main is a CLI's entry point as its tests call it: it runs one invocation
// and returns the exit status.
type Main func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Result is one CLI invocation's outcome.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs the CLI against sock with args.
func Run(run Main, sock string, args ...string) Result {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"--socket", sock}, args...), &stdout, &stderr)
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// Check fails t unless the run ended with code and printed exactly stdout
// and stderr.
func (r Result) Check(t testing.TB, code int, stdout, stderr string) {
	t.Helper()
	if r.Code != code || r.Stdout != stdout || r.Stderr != stderr {
		t.Errorf("exit %d, stderr %q, stdout\n%s\nwant exit %d, stderr %q, stdout\n%s", r.Code, r.Stderr, r.Stdout, code, stderr, stdout)
	}
}
