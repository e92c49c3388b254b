package main

// This file owns a node's life: first start (initialise a cluster or join
// one), restarts from the state folder, and the role loop that runs the
// node as a manager and/or a worker and switches when the cluster promotes
// or demotes it.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/agent"
	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/orchestrator/ca"
	"github.com/shoal/shoal/orchestrator/manager"
	"github.com/shoal/shoal/orchestrator/raft"
)

type nodeConfig struct {
	stateDir               string
	listenRemoteAPI        string
	advertiseAddr          string
	controlSocket          string
	hostname               string
	joinAddr               string
	joinToken              string
	tickInterval           time.Duration
	electionTick           int
	heartbeatTick          int
	snapshotInterval       uint64
	keepOldSnapshotEntries uint64
	certExpiry             time.Duration
	dispatcherHeartbeat    time.Duration
	clusterName            string
	logger                 *slog.Logger

	// The executor flags (executor.go).
	executor       string
	simStartDelay  time.Duration
	simFailureRate float64
	simCPUs        float64
	simMemory      string
	engineLabels   []string
	pull           string
	cniBinDir      string
	networkMTU     int
	// dataPathAddrFlag is --data-path-addr; dataPath the address resolved from it (dataplane.go).
	dataPathAddrFlag string
	dataPath         netip.Addr
	// lbBackend is --lb-backend (mesh.go); endpointGrace --endpoint-grace.
	lbBackend     string
	endpointGrace time.Duration
	// repairPeriod is --dataplane-repair-period.
	repairPeriod time.Duration
	// Parsed from the flags by validate.
	simMemoryBytes int64
	labels         map[string]string
}

// validate checks the flags and fills the values parsed from them.
func (c *nodeConfig) validate() error {
	switch {
	case c.stateDir == "":
		return errors.New("--state-dir: must name a folder")
	case c.joinAddr != "" && c.joinToken == "":
		return errors.New("--join-token: required with --join-addr")
	case c.joinToken != "" && c.joinAddr == "":
		return errors.New("--join-addr: required with --join-token")
	case c.tickInterval <= 0:
		return errors.New("--raft-tick: must be positive")
	case c.heartbeatTick <= 0:
		return errors.New("--heartbeat-tick: must be positive")
	case c.electionTick <= c.heartbeatTick:
		return fmt.Errorf("--election-tick: %d must be greater than --heartbeat-tick (%d)", c.electionTick, c.heartbeatTick)
	case c.certExpiry < time.Minute:
		return fmt.Errorf("--cert-expiry: %s is shorter than a minute", c.certExpiry)
	case c.dispatcherHeartbeat <= 0:
		return errors.New("--dispatcher-heartbeat: must be positive")
	}
	if err := c.parseExecutorFlags(); err != nil {
		return err
	}
	if c.joinToken != "" {
		if _, err := ca.ParseJoinToken(c.joinToken); err != nil {
			return fmt.Errorf("--join-token: %w", err)
		}
	}
	for flag, addr := range map[string]string{"--listen-remote-api": c.listenRemoteAPI, "--advertise-addr": c.advertiseAddr, "--join-addr": c.joinAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %q is not host:port: %w", flag, addr, err)
		}
	}
	host, _, _ := net.SplitHostPort(c.advertise())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("--advertise-addr: required when --listen-remote-api (%s) listens on every address: other nodes need one address to reach this node at", c.listenRemoteAPI)
	}
	return nil
}

func (c *nodeConfig) certDir() string       { return filepath.Join(c.stateDir, "certificates") }
func (c *nodeConfig) bootstrapPath() string { return filepath.Join(c.stateDir, "bootstrap.pb") }
func (c *nodeConfig) raftDir() string       { return filepath.Join(c.stateDir, "raft") }

func (c *nodeConfig) description() *api.NodeDescription {
	d := &api.NodeDescription{Hostname: c.hostname, Os: runtime.GOOS, Arch: runtime.GOARCH, Executor: c.executor, EngineLabels: maps.Clone(c.labels)}
	if c.dataPath.IsValid() {
		d.DataPathAddr = c.dataPath.String()
	}
	return d
}

// advertise is the address other nodes reach this node's managers at.
func (c *nodeConfig) advertise() string {
	if c.advertiseAddr != "" {
		return c.advertiseAddr
	}
	return c.listenRemoteAPI
}

// runNode runs the node until ctx ends.
func runNode(ctx context.Context, cfg nodeConfig) error {
	log := cfg.logger
	if err := os.MkdirAll(cfg.stateDir, 0o700); err != nil {
		return fmt.Errorf("create the state folder: %w", err)
	}
	sc, err := ca.LoadSecurityConfig(cfg.certDir())
	joined := false
	var boot *manager.Bootstrap
	switch {
	case err == nil:
		id := sc.Identity()
		log.Info("restarting node", "node", id.NodeID, "cluster", id.ClusterID, "role", id.Role.Name())
		// A first manager that stopped before its cluster object was
		// committed finishes the job now.
		if boot, err = loadBootstrap(cfg.bootstrapPath()); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist) && cfg.joinAddr == "":
		if sc, boot, err = initCluster(cfg); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		sc, err = ca.RequestCertificate(jctx, cfg.joinAddr, cfg.joinToken, cfg.description(), cfg.advertise(), cfg.certDir())
		cancel()
		if err != nil {
			return fmt.Errorf("join the cluster at %s: %w", cfg.joinAddr, err)
		}
		joined = true
		id := sc.Identity()
		log.Info("joined the cluster", "node", id.NodeID, "cluster", id.ClusterID, "role", id.Role.Name())
	default:
		return err
	}
	remotes := newRemotes(filepath.Join(cfg.stateDir, "managers.json"), cfg.joinAddr)
	if cfg.dataPath, err = cfg.dataPathAddr(remotes.list()); err != nil {
		return err
	}
	// One executor for the node's life: its tasks outlive agents, so a
	// promotion or demotion does not stop them.
	executor, err := cfg.newExecutor(sc.Identity().NodeID, cfg.dataPath)
	if err != nil {
		return err
	}
	go executor.runDataplane(ctx)
	// A manager without raft state joins raft through this address: the
	// one it joined the cluster through, or, if it stopped before it had
	// joined raft, --join-addr or a manager it knew of.
	joinAddr := cfg.joinAddr
	if !joined && joinAddr == "" {
		for _, addr := range remotes.list() {
			if addr != cfg.advertise() {
				joinAddr = addr
				break
			}
		}
	}
	for {
		next, err := runRole(ctx, cfg, sc, remotes, boot, joinAddr, executor)
		if err != nil || ctx.Err() != nil {
			return err
		}
		boot, joinAddr = nil, next
	}
}

// initCluster creates a new cluster's root CA, join tokens and this node's
// manager certificate; the returned bootstrap is written to raft as the
// cluster object once this manager leads.
func initCluster(cfg nodeConfig) (*ca.SecurityConfig, *manager.Bootstrap, error) {
	clusterID, err := ca.NewID()
	if err != nil {
		return nil, nil, err
	}
	nodeID, err := ca.NewID()
	if err != nil {
		return nil, nil, err
	}
	rootCA, sc, err := ca.Bootstrap(clusterID, nodeID, cfg.certExpiry, cfg.certDir())
	if err != nil {
		return nil, nil, fmt.Errorf("initialise the cluster's CA: %w", err)
	}
	defer func() {
		if err != nil {
			// Half an initialisation is useless: start clean next time.
			os.RemoveAll(cfg.certDir())
		}
	}()
	spec := manager.DefaultClusterSpec(cfg.clusterName)
	spec.CaConfig.NodeCertExpiry = durationpb.New(cfg.certExpiry)
	spec.Dispatcher = &api.DispatcherConfig{HeartbeatPeriod: durationpb.New(cfg.dispatcherHeartbeat)}
	spec.Raft = &api.RaftConfig{
		SnapshotInterval:           cfg.snapshotInterval,
		LogEntriesForSlowFollowers: cfg.keepOldSnapshotEntries,
		ElectionTick:               uint32(cfg.electionTick),
		HeartbeatTick:              uint32(cfg.heartbeatTick),
	}
	boot := &manager.Bootstrap{ClusterID: clusterID, RootCA: rootCA, Spec: spec}
	if err = saveBootstrap(cfg.bootstrapPath(), boot); err != nil {
		return nil, nil, err
	}
	cfg.logger.Info("initialised a new cluster", "cluster", clusterID, "node", nodeID, "ca_digest", rootCA.CaCertDigest)
	return sc, boot, nil
}

// saveBootstrap keeps a new cluster's object (with the root CA key) on disk,
// mode 0600, until raft has committed it.
func saveBootstrap(path string, b *manager.Bootstrap) error {
	data, err := proto.Marshal(&api.Cluster{Id: b.ClusterID, Spec: b.Spec, RootCa: b.RootCA})
	if err != nil {
		return fmt.Errorf("encode the new cluster: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("save the new cluster: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save the new cluster: %w", err)
	}
	return nil
}

// loadBootstrap reads what saveBootstrap kept; nil when there is nothing.
func loadBootstrap(path string) (*manager.Bootstrap, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the new cluster's bootstrap: %w", err)
	}
	var c api.Cluster
	if err := proto.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("read the new cluster's bootstrap %s: %w", path, err)
	}
	return &manager.Bootstrap{ClusterID: c.Id, RootCA: c.RootCa, Spec: c.Spec}, nil
}

// roleRetryInterval spaces attempts to switch roles when renewing the
// certificate for the new role failed.
const roleRetryInterval = 5 * time.Second

// runRole runs the node in the role its certificate grants until ctx ends
// or the cluster wants another role. It returns the address a newly
// promoted manager joins raft through. The executor is the node's: its
// tasks keep running when runRole returns.
func runRole(ctx context.Context, cfg nodeConfig, sc *ca.SecurityConfig, remotes *remotes, boot *manager.Bootstrap, joinAddr string, executor nodeExecutor) (string, error) {
	log := cfg.logger
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	role := sc.Identity().Role
	errc := make(chan error, 3)
	if role == api.NodeRole_NODE_ROLE_MANAGER {
		mgr, err := manager.New(manager.Config{
			StateDir:                   cfg.stateDir,
			ListenRemoteAPI:            cfg.listenRemoteAPI,
			AdvertiseAddr:              cfg.advertiseAddr,
			ControlSocket:              cfg.controlSocket,
			Security:                   sc,
			Description:                cfg.description(),
			Bootstrap:                  boot,
			JoinAddr:                   joinAddr,
			TickInterval:               cfg.tickInterval,
			ElectionTick:               cfg.electionTick,
			HeartbeatTick:              cfg.heartbeatTick,
			SnapshotInterval:           cfg.snapshotInterval,
			LogEntriesForSlowFollowers: cfg.keepOldSnapshotEntries,
			Logger:                     log,
		})
		if err != nil {
			return "", err
		}
		remotes.add(mgr.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- mgr.Run(ctx)
		}()
		// The agent's session needs this node's record in the store.
		select {
		case <-mgr.Ready():
			if boot != nil {
				// The cluster object is committed: the key lives in raft now.
				if err := os.Remove(cfg.bootstrapPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
					log.Warn("remove the committed bootstrap", "err", err)
				}
			}
		case err := <-errc:
			if !errors.Is(err, raft.ErrMemberRemoved) {
				if err == nil {
					err = ctx.Err()
				}
				return "", err
			}
			// Demoted while it was down: carry on until the agent
			// brings the worker role.
			log.Info("this manager was removed from the raft group while it was down")
		case <-ctx.Done():
			return "", nil
		}
	}

	wantRole := make(chan api.NodeRole, 1)
	var desired atomic.Int32 // the role the cluster last asked for
	desired.Store(int32(role))
	ag := agent.New(agent.Config{
		Managers:          remotes.list(),
		Dial:              func(_ context.Context, addr string) (*grpc.ClientConn, error) { return manager.Dial(addr, sc) },
		Description:       cfg.description(),
		Executor:          executor.Executor,
		OnNetworks:        executor.onNetworks,
		OnEndpoints:       executor.onEndpoints,
		OnServices:        executor.onServices,
		Mesh:              executor.meshState(),
		EndpointGrace:     executor.endpointGrace(cfg.endpointGrace),
		OnNetworksRemoved: executor.onNetworksRemoved,
		Dataplane:         executor.dataplaneState(),
		NetworkStatus:     executor.networkStatus(),
		Logger:            log.With("component", "agent"),
		OnMessage: func(msg *api.SessionMessage) {
			remotes.set(msg.Managers)
			desired.Store(int32(msg.DesiredRole))
			if msg.DesiredRole != role {
				select {
				case wantRole <- msg.DesiredRole:
				default:
				}
			}
		},
	})
	// dialManager opens a connection to the first known manager that
	// answers a ping-sized call (grpc dials lazily, so a plain dial would
	// always "succeed" on the first address).
	dialManager := func(ctx context.Context) (*grpc.ClientConn, error) {
		var last error
		for _, addr := range ag.Managers() {
			conn, err := manager.Dial(addr, sc)
			if err != nil {
				last = err
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = api.NewCAClient(conn).GetRootCACertificate(pctx, &api.GetRootCACertificateRequest{})
			cancel()
			if err == nil {
				return conn, nil
			}
			conn.Close()
			last = fmt.Errorf("%s: %w", addr, err)
		}
		if last == nil {
			last = errors.New("no manager known")
		}
		return nil, fmt.Errorf("no manager reachable: %w", last)
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		errc <- ag.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		ca.RenewalLoop(ctx, sc, dialManager, log.With("component", "ca-renewal"))
	}()

	var retryRole <-chan time.Time // on while a role switch waits to be retried
	for {
		select {
		case <-ctx.Done():
			return "", nil
		case err := <-errc:
			if errors.Is(err, raft.ErrMemberRemoved) {
				// Demoted: wait for the agent to bring the new role.
				log.Info("this manager left the raft group")
				continue
			}
			if err != nil {
				return "", err
			}
			if ctx.Err() != nil {
				return "", nil
			}
		case <-retryRole:
			retryRole = nil
			if want := api.NodeRole(desired.Load()); want != role {
				select {
				case wantRole <- want:
				default:
				}
			}
		case want := <-wantRole:
			log.Info("the cluster wants this node in another role", "from", role.Name(), "to", want.Name())
			if err := ca.RenewVia(ctx, sc, dialManager); err != nil {
				log.Warn("renew the certificate for the new role; retrying", "err", err)
				retryRole = time.After(roleRetryInterval)
				continue
			}
			if got := sc.Identity().Role; got == role {
				// The CA still sees the old role (its read may lag the
				// change): ask again shortly, if the cluster still wants it.
				retryRole = time.After(roleRetryInterval)
				continue
			}
			cancel()
			wg.Wait()
			if want == api.NodeRole_NODE_ROLE_WORKER {
				if err := os.RemoveAll(cfg.raftDir()); err != nil {
					return "", fmt.Errorf("remove the raft state of the demoted manager: %w", err)
				}
				return "", nil
			}
			managers := ag.Managers()
			if len(managers) == 0 {
				return "", errors.New("promoted, but no manager is known to join through")
			}
			return managers[0], nil
		}
	}
}
