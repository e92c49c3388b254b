package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var testIdentity = Identity{Hostname: "web.3", Slot: "3", IP: "198.18.0.13", Task: "t1", Service: "web"}

func TestIdentityRead(t *testing.T) {
	env := map[string]string{"SHOAL_SLOT": "3", "SHOAL_TASK_ID": "t1", "SHOAL_SERVICE_NAME": "web"}
	src := identitySource{
		getenv:   func(k string) string { return env[k] },
		hostname: func() (string, error) { return "web.3", nil },
		ipv4:     func() string { return "198.18.0.13" },
	}
	if got := src.read(); got != testIdentity {
		t.Errorf("read() = %+v, want %+v", got, testIdentity)
	}
}

func TestFirstIPv4Of(t *testing.T) {
	cidr := func(s string) net.Addr {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return n
	}
	tests := []struct {
		name  string
		addrs []net.Addr
		want  string
	}{
		{"none", nil, ""},
		{"IPv6 only", []net.Addr{cidr("fd00::1/64")}, ""},
		{"loopback skipped", []net.Addr{cidr("127.0.0.1/8"), cidr("198.18.0.5/24")}, "198.18.0.5"},
		{"first wins", []net.Addr{cidr("fd00::1/64"), cidr("198.18.0.5/24"), cidr("198.18.1.5/24")}, "198.18.0.5"},
		{"IPAddr", []net.Addr{&net.IPAddr{IP: net.ParseIP("198.19.0.1")}}, "198.19.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := firstIPv4Of(tt.addrs); got != tt.want {
				t.Errorf("firstIPv4Of() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHTTPHandler(t *testing.T) {
	h := newHTTPHandler(func() Identity { return testIdentity })
	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string
	}{
		{"GET", "/", http.StatusOK, `{"hostname":"web.3","slot":"3","ip":"198.18.0.13","task":"t1","service":"web","peer":"192.0.2.1"}` + "\n"},
		{"GET", "/healthz", http.StatusOK, "ok\n"},
		{"GET", "/nope", http.StatusNotFound, ""},
		{"POST", "/", http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantCode)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body %q, want %q", rec.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestEchoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newEchoServer(func() Identity { return testIdentity }, discardLog())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read the identity line: %v", err)
	}
	var got Identity
	want := testIdentity
	want.Peer = "127.0.0.1" // the client's address, as the server saw it
	if err := json.Unmarshal([]byte(line), &got); err != nil || got != want {
		t.Fatalf("identity line %q (%v), want %+v", line, err, want)
	}
	if _, err := io.WriteString(conn, "hello\n"); err != nil {
		t.Fatal(err)
	}
	if echoed, err := r.ReadString('\n'); err != nil || echoed != "hello\n" {
		t.Fatalf("echo = %q, %v; want %q", echoed, err, "hello\n")
	}

	// Closing ends open connections and, with the listener closed, Serve.
	ln.Close()
	srv.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Errorf("read after Close: %v, want EOF", err)
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{"SHOAL_ECHO_HTTP_ADDR": ":18080"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr string
	}{
		{"defaults and env", nil, config{httpAddr: ":18080", tcpAddr: ":9000", exitCode: -1}, ""},
		{"flags win", []string{"-http", ":1", "-tcp", ":2"}, config{httpAddr: ":1", tcpAddr: ":2", exitCode: -1}, ""},
		{"hooks", []string{"-alloc", "64", "-alloc-after", "1s", "-exit", "3", "-ignore-sigterm"},
			config{httpAddr: ":18080", tcpAddr: ":9000", allocMiB: 64, allocAfter: time.Second, exitCode: 3, ignoreSIGTERM: true}, ""},
		{"negative alloc delay", []string{"-alloc", "1", "-alloc-after", "-1s"}, config{}, "-alloc-after"},
		{"negative alloc", []string{"-alloc", "-1"}, config{}, "-alloc"},
		{"bad exit code", []string{"-exit", "300"}, config{}, "-exit"},
		{"arguments", []string{"client", "x:1"}, config{}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("config %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUsageHidesTestHooks(t *testing.T) {
	var out strings.Builder
	_, err := parseConfig([]string{"-h"}, func(string) string { return "" }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, hidden := range []string{"alloc", "exit", "ignore-sigterm"} {
		if strings.Contains(out.String(), "-"+hidden) {
			t.Errorf("usage shows -%s:\n%s", hidden, out.String())
		}
	}
}

// TestExitsZeroOnSIGTERM runs the built command: it serves, then exits 0
// on SIGTERM.
func TestExitsZeroOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the command")
	}
	bin := filepath.Join(t.TempDir(), "shoal-echo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	httpAddr, tcpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "-http", httpAddr, "-tcp", tcpAddr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	logs := bufio.NewScanner(stderr)
	serving := false
	for !serving && logs.Scan() {
		serving = strings.Contains(logs.Text(), "serving")
	}
	if !serving {
		t.Fatalf("shoal-echo ended before serving: %v", logs.Err())
	}
	resp, err := http.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, stderr); err != nil { // until the process exits
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want 0", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
