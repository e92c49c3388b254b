package docker

import (
	"context"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

func TestTCPTargetPorts(t *testing.T) {
	task := &api.Task{Endpoint: &api.EndpointSpec{Ports: []*api.PortConfig{
		{TargetPort: 8080, PublishedPort: 80},
		{TargetPort: 53, Protocol: api.PortConfig_PROTOCOL_UDP},
		{TargetPort: 443},
		{TargetPort: 8080, PublishedPort: 81, PublishMode: api.PortConfig_PUBLISH_MODE_HOST},
	}}}
	if got, want := tcpTargetPorts(task), []uint16{443, 8080}; !slices.Equal(got, want) {
		t.Errorf("tcpTargetPorts = %v, want %v (TCP only, once each, sorted)", got, want)
	}
	if got := tcpTargetPorts(&api.Task{}); len(got) != 0 {
		t.Errorf("tcpTargetPorts of a task declaring none = %v", got)
	}
}

// waitListening sees a port once a socket listens on it in the process's namespace, IPv4 or
// IPv6, and reports the ports that never do.
func TestWaitListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln6, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6 listener here: %v", err)
	}
	defer ln6.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	port6 := uint16(ln6.Addr().(*net.TCPAddr).Port)
	missing, err := waitListening(context.Background(), os.Getpid(), []uint16{port, port6}, time.Second)
	if err != nil || len(missing) != 0 {
		t.Fatalf("waitListening(%d, %d) = %v, %v; want both listening", port, port6, missing, err)
	}
	// A port nobody listens on: the one ln had, once closed.
	ln.Close()
	missing, err = waitListening(context.Background(), os.Getpid(), []uint16{port, port6}, 50*time.Millisecond)
	if err != nil || !slices.Equal(missing, []uint16{port}) {
		t.Fatalf("waitListening after closing %d = %v, %v; want it missing", port, missing, err)
	}
}
