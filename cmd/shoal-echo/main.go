// Command shoal-echo is shoal's test workload: a static server that tells
// who answered. GET / on its HTTP port answers one line of JSON
//
//	{"hostname":"web.3","slot":"3","ip":"10.20.0.13","task":"…","service":"web"}
//
// from the env the Docker executor sets (SHOAL_SLOT, SHOAL_TASK_ID,
// SHOAL_SERVICE_NAME), the hostname and the first non-loopback IPv4
// address; GET /healthz answers "ok". Its TCP port writes the same line to
// each connection, then echoes what it receives. On SIGTERM or SIGINT it
// closes its listeners and connections and exits 0.
//
// Hidden flags make it misbehave for the executor's tests: -alloc N holds N
// MiB (after -alloc-after D), -exit N exits at once with code N,
// -ignore-sigterm logs SIGTERM and carries on.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	httpAddr string
	tcpAddr  string
	// lookup, when set, makes shoal-echo resolve the name through the
	// container's resolv.conf, print the addresses and exit.
	lookup string

	// Test hooks, left out of the usage text.
	allocMiB      int
	allocAfter    time.Duration
	exitCode      int // <0: do not exit by itself
	ignoreSIGTERM bool
}

// hiddenFlags are the test hooks.
var hiddenFlags = map[string]bool{"alloc": true, "alloc-after": true, "exit": true, "ignore-sigterm": true}

// parseConfig reads args (without the program name); getenv supplies the
// ports' env defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("shoal-echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.httpAddr, "http", envOr(getenv, "SHOAL_ECHO_HTTP_ADDR", ":8080"), "HTTP listen address (env SHOAL_ECHO_HTTP_ADDR)")
	fs.StringVar(&c.tcpAddr, "tcp", envOr(getenv, "SHOAL_ECHO_TCP_ADDR", ":9000"), "TCP echo listen address (env SHOAL_ECHO_TCP_ADDR)")
	fs.StringVar(&c.lookup, "lookup", "", "resolve this name (as the container's resolv.conf says), print its IPv4 addresses as JSON and exit")
	fs.IntVar(&c.allocMiB, "alloc", 0, "allocate and hold this many MiB at start")
	fs.DurationVar(&c.allocAfter, "alloc-after", 0, "wait this long before -alloc")
	fs.IntVar(&c.exitCode, "exit", -1, "exit at once with this code")
	fs.BoolVar(&c.ignoreSIGTERM, "ignore-sigterm", false, "log SIGTERM and keep running")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: shoal-echo [-http ADDR] [-tcp ADDR] | shoal-echo -lookup NAME")
		fs.VisitAll(func(f *flag.Flag) {
			if !hiddenFlags[f.Name] {
				fmt.Fprintf(fs.Output(), "  -%s\n    \t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
			}
		})
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	switch {
	case fs.NArg() > 0:
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.allocMiB < 0:
		return config{}, fmt.Errorf("-alloc: %d MiB is negative", c.allocMiB)
	case c.allocAfter < 0:
		return config{}, fmt.Errorf("-alloc-after: %v is negative", c.allocAfter)
	case c.exitCode > 255:
		return config{}, fmt.Errorf("-exit: %d is not an exit code (0-255)", c.exitCode)
	}
	return c, nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	c, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoal-echo:", err)
		os.Exit(2)
	}
	if c.lookup != "" {
		if err := lookup(os.Stdout, c.lookup); err != nil {
			fmt.Fprintln(os.Stderr, "shoal-echo:", err)
			os.Exit(1)
		}
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(c, log); err != nil {
		log.Error("shoal-echo failed", "err", err)
		os.Exit(1)
	}
}

// lookup resolves name with Go's own resolver, which reads /etc/resolv.conf as any container
// program would, and writes {"name":…,"addrs":[…]} to w.
func lookup(w io.Writer, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := &net.Resolver{PreferGo: true}
	addrs, err := r.LookupNetIP(ctx, "ip4", name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	out := struct {
		Name  string   `json:"name"`
		Addrs []string `json:"addrs"`
	}{Name: name, Addrs: []string{}}
	for _, a := range addrs {
		out.Addrs = append(out.Addrs, a.Unmap().String())
	}
	return json.NewEncoder(w).Encode(out)
}

func run(c config, log *slog.Logger) error {
	if c.allocMiB > 0 {
		time.Sleep(c.allocAfter)
		mem := allocate(c.allocMiB)
		defer runtime.KeepAlive(mem)
		log.Info("holding memory", "mib", c.allocMiB)
	}
	if c.exitCode >= 0 {
		log.Info("exiting as asked", "code", c.exitCode)
		os.Exit(c.exitCode)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	httpLn, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return fmt.Errorf("listen for HTTP: %w", err)
	}
	tcpLn, err := net.Listen("tcp", c.tcpAddr)
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("listen for TCP echo: %w", err)
	}
	httpSrv := &http.Server{Handler: newHTTPHandler(hostIdentity.read), ReadHeaderTimeout: 10 * time.Second}
	echoSrv := newEchoServer(hostIdentity.read, log)
	serveErr := make(chan error, 2)
	go func() { serveErr <- ignoreClosed(httpSrv.Serve(httpLn)) }()
	go func() { serveErr <- echoSrv.Serve(tcpLn) }()
	log.Info("serving", "http", httpLn.Addr().String(), "tcp", tcpLn.Addr().String())

	failed := waitForStop(stop, serveErr, c.ignoreSIGTERM, log)
	tcpLn.Close()
	echoSrv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(ctx); err != nil {
		httpSrv.Close()
	}
	return failed
}

// waitForStop returns nil on a stop signal, or the error of a server that
// stopped by itself.
func waitForStop(signals <-chan os.Signal, serveErr <-chan error, ignoreSIGTERM bool, log *slog.Logger) error {
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGTERM && ignoreSIGTERM {
				log.Info("ignoring SIGTERM")
				continue
			}
			log.Info("stopping", "signal", sig.String())
			return nil
		case err := <-serveErr:
			if err == nil {
				err = errors.New("a listener closed")
			}
			return fmt.Errorf("serve: %w", err)
		}
	}
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// allocate returns mib MiB of memory, every page written so that it is
// resident.
func allocate(mib int) [][]byte {
	const page = 4096
	chunks := make([][]byte, mib)
	for i := range chunks {
		chunks[i] = make([]byte, 1<<20)
		for j := 0; j < len(chunks[i]); j += page {
			chunks[i][j] = 1
		}
	}
	return chunks
}
