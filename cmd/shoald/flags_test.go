package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func validConfig() nodeConfig {
	return nodeConfig{
		stateDir:            "/tmp/x",
		listenRemoteAPI:     "127.0.0.1:4242",
		tickInterval:        100 * time.Millisecond,
		electionTick:        10,
		heartbeatTick:       1,
		certExpiry:          time.Hour,
		dispatcherHeartbeat: 5 * time.Second,
		executor:            "sim",
		pull:                "missing",
		cniBinDir:           "/opt/cni/bin",
		networkMTU:          1450,
	}
}

// Every bad flag is refused with an error naming the flag.
func TestValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		name   string
		change func(*nodeConfig)
		want   string
	}{
		{"no state dir", func(c *nodeConfig) { c.stateDir = "" }, "--state-dir"},
		{"join addr without token", func(c *nodeConfig) { c.joinAddr = "127.0.0.1:1" }, "--join-token"},
		{"token without join addr", func(c *nodeConfig) {
			c.joinToken = "SHOAL-1-" + strings.Repeat("0", 50) + "-" + strings.Repeat("0", 25)
		}, "--join-addr"},
		{"malformed token", func(c *nodeConfig) { c.joinAddr, c.joinToken = "127.0.0.1:1", "SHOAL-2-x" }, "--join-token"},
		{"zero tick", func(c *nodeConfig) { c.tickInterval = 0 }, "--raft-tick"},
		{"zero heartbeat tick", func(c *nodeConfig) { c.heartbeatTick = 0 }, "--heartbeat-tick"},
		{"election not above heartbeat", func(c *nodeConfig) { c.electionTick = 1 }, "--election-tick"},
		{"short certificates", func(c *nodeConfig) { c.certExpiry = time.Second }, "--cert-expiry"},
		{"zero dispatcher heartbeat", func(c *nodeConfig) { c.dispatcherHeartbeat = 0 }, "--dispatcher-heartbeat"},
		{"listen address without port", func(c *nodeConfig) { c.listenRemoteAPI = "127.0.0.1" }, "--listen-remote-api"},
		{"advertise address without port", func(c *nodeConfig) { c.advertiseAddr = "node-1" }, "--advertise-addr"},
		{"every address, nothing to advertise", func(c *nodeConfig) { c.listenRemoteAPI = "0.0.0.0:4242" }, "--advertise-addr"},
		{"unknown pull policy", func(c *nodeConfig) { c.pull = "sometimes" }, "--pull"},
		{"no CNI folder", func(c *nodeConfig) { c.cniBinDir = "" }, "--cni-bin-dir"},
		{"MTU too small", func(c *nodeConfig) { c.networkMTU = 40 }, "--network-mtu"},
		{"unknown executor", func(c *nodeConfig) { c.executor = "lxc" }, "--executor"},
		{"negative start delay", func(c *nodeConfig) { c.simStartDelay = -time.Second }, "--sim-start-delay"},
		{"failure rate above 1", func(c *nodeConfig) { c.simFailureRate = 1.5 }, "--sim-failure-rate"},
		{"negative failure rate", func(c *nodeConfig) { c.simFailureRate = -0.1 }, "--sim-failure-rate"},
		{"negative CPUs", func(c *nodeConfig) { c.simCPUs = -1 }, "--sim-cpus"},
		{"memory without a number", func(c *nodeConfig) { c.simMemory = "GiB" }, "--sim-memory"},
		{"memory with an unknown unit", func(c *nodeConfig) { c.simMemory = "4 parsecs" }, "--sim-memory"},
		{"label without a value", func(c *nodeConfig) { c.engineLabels = []string{"zone"} }, "--engine-label"},
		{"label without a key", func(c *nodeConfig) { c.engineLabels = []string{"=a"} }, "--engine-label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	c := validConfig()
	c.listenRemoteAPI, c.advertiseAddr = "0.0.0.0:4242", "192.0.2.10:4242"
	if err := c.validate(); err != nil {
		t.Fatalf("listening everywhere with an advertise address: %v", err)
	}
	if c := validConfig(); c.validate() != nil {
		t.Fatalf("the valid config is refused: %v", c.validate())
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"debug", "INFO", "warn", "warning", "error"} {
		if _, err := parseLevel(s); err != nil {
			t.Errorf("parseLevel(%q): %v", s, err)
		}
	}
	if _, err := parseLevel("loud"); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Fatalf("parseLevel(loud) = %v, want an error naming --log-level", err)
	}
}

// The default executor is docker, pulling missing images, with the CNI plugins where runtimes
// look for them.
func TestDockerIsTheDefault(t *testing.T) {
	f := newCommand().Flags()
	for flag, want := range map[string]string{"executor": "docker", "pull": "missing", "cni-bin-dir": "/opt/cni/bin", "network-mtu": "0"} {
		if got := f.Lookup(flag).DefValue; got != want {
			t.Errorf("--%s defaults to %q, want %q", flag, got, want)
		}
	}
}

// The executor flags reach the node's description and the sim executor.
func TestExecutorFlags(t *testing.T) {
	c := validConfig()
	c.hostname = "w1"
	c.simCPUs, c.simMemory = 2.5, "4GiB"
	c.engineLabels = []string{"zone=a", "disk=ssd", "zone=b"}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	d := c.description()
	if d.Hostname != "w1" || d.Executor != "sim" || len(d.EngineLabels) != 2 || d.EngineLabels["zone"] != "b" || d.EngineLabels["disk"] != "ssd" {
		t.Errorf("description %v, want host w1, executor sim, labels zone=b disk=ssd", d)
	}
	e, err := c.newExecutor("n1", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := e.Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ed.Resources.GetNanoCpus() != 2500e6 || ed.Resources.GetMemoryBytes() != 4<<30 {
		t.Errorf("sim resources %v, want 2.5 CPUs and 4GiB", ed.Resources)
	}
}

// --sim-memory reads sizes as shoalctl's --reserve-memory does (docker's
// convention: every unit a power of 1024), so a node offering 4GB fits a
// task reserving 4GB.
func TestSimMemoryUnits(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1000", 1000},
		{"512B", 512},
		{"4GB", 4 << 30},
		{"4GiB", 4 << 30},
		{"4gib", 4 << 30},
		{"4g", 4 << 30},
		{"1.5GiB", 3 << 29},
		{"256MB", 256 << 20},
		{"1TiB", 1 << 40},
		{"8 KiB", 8 << 10},
		{"8kb", 8 << 10},
	}
	for _, tc := range tests {
		c := validConfig()
		c.simMemory = tc.in
		if err := c.validate(); err != nil || c.simMemoryBytes != tc.want {
			t.Errorf("--sim-memory %s: %d bytes, %v; want %d", tc.in, c.simMemoryBytes, err, tc.want)
		}
	}
	for _, bad := range []string{"GiB", "-1GiB", "0", "0GB", "4 parsecs", "1.2.3G", "99999999999TiB"} {
		c := validConfig()
		c.simMemory = bad
		if err := c.validate(); err == nil || !strings.HasPrefix(err.Error(), "--sim-memory: ") {
			t.Errorf("--sim-memory %s: %v, want an error naming --sim-memory", bad, err)
		}
	}
}

// The data-path address: the flag, else the advertise address's host, else the source address
// towards a manager; bad values name the flag.
func TestDataPathAddr(t *testing.T) {
	cases := []struct {
		name, flag, advertise string
		managers              []string
		want, wantErr         string
	}{
		{name: "flag", flag: "198.18.0.7", advertise: "198.18.0.1:4242", want: "198.18.0.7"},
		{name: "advertise address", advertise: "198.18.0.1:4242", want: "198.18.0.1"},
		{name: "route to a manager", advertise: "0.0.0.0:4242", managers: []string{"127.0.0.1:4242"}, want: "127.0.0.1"},
		{name: "nothing to go by", advertise: "0.0.0.0:4242"},
		{name: "not an address", flag: "eth0", wantErr: `--data-path-addr: "eth0"`},
		{name: "IPv6", flag: "2001:db8::1", wantErr: "--data-path-addr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			c.dataPathAddrFlag, c.advertiseAddr = tc.flag, tc.advertise
			got, err := c.dataPathAddr(tc.managers)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("dataPathAddr = %v, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || (tc.want == "" && got.IsValid()) || (tc.want != "" && got.String() != tc.want) {
				t.Fatalf("dataPathAddr = %v, %v; want %q", got, err, tc.want)
			}
		})
	}
}
