package docker

// This file owns the translation of a task into the engine's create
// requests: the task's container from its ContainerSpec and resources, and
// its sandbox. Everything a create could refuse for the spec's sake is
// checked here first, so a bad spec fails Prepare before anything exists.

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/shoal/shoal/api"
)

// defaultStopGrace is a task's stop grace period when its spec sets none.
const defaultStopGrace = 10 * time.Second

// sandboxStopSeconds is how long a sandbox's pause process gets to exit on
// SIGTERM; it exits at once.
const sandboxStopSeconds = 5

// MountError says why one of a task's mounts cannot be made.
type MountError struct {
	Index  int // position in the spec's mounts, from 0
	Mount  *api.Mount
	Reason string
}

func (e *MountError) Error() string {
	return fmt.Sprintf("mount %d (%s %q → %q): %s", e.Index+1, mountTypeName(e.Mount.GetType()),
		e.Mount.GetSource(), e.Mount.GetTarget(), e.Reason)
}

func mountTypeName(t api.Mount_Type) string {
	switch t {
	case api.Mount_TYPE_BIND:
		return "bind"
	case api.Mount_TYPE_VOLUME:
		return "volume"
	case api.Mount_TYPE_TMPFS:
		return "tmpfs"
	}
	return t.String()
}

// volumeNamePattern is the engine's rule for volume names.
var volumeNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// engineMounts checks the spec's mounts and returns them as the engine's.
// A bind mount's source must exist on this node: the engine runs here (the
// sandboxes' netns paths are this host's).
func engineMounts(mounts []*api.Mount) ([]mount.Mount, error) {
	out := make([]mount.Mount, 0, len(mounts))
	targets := make(map[string]int, len(mounts))
	for i, m := range mounts {
		fail := func(format string, args ...any) error {
			return &MountError{Index: i, Mount: m, Reason: fmt.Sprintf(format, args...)}
		}
		target := m.GetTarget()
		switch {
		case target == "":
			return nil, fail("no target")
		case !path.IsAbs(target):
			return nil, fail("the target is not an absolute path")
		case path.Clean(target) == "/":
			return nil, fail("the target cannot be /")
		}
		if j, ok := targets[path.Clean(target)]; ok {
			return nil, fail("mount %d has the same target", j+1)
		}
		targets[path.Clean(target)] = i
		em := mount.Mount{Source: m.GetSource(), Target: target, ReadOnly: m.GetReadOnly()}
		switch m.GetType() {
		case api.Mount_TYPE_BIND:
			em.Type = mount.TypeBind
			switch src := m.GetSource(); {
			case src == "":
				return nil, fail("a bind mount needs a source path")
			case !path.IsAbs(src):
				return nil, fail("the source is not an absolute path")
			default:
				if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
					return nil, fail("the source does not exist on this node")
				} else if err != nil {
					return nil, fail("the source cannot be read: %v", err)
				}
			}
		case api.Mount_TYPE_VOLUME:
			em.Type = mount.TypeVolume
			if src := m.GetSource(); src != "" && !volumeNamePattern.MatchString(src) {
				if path.IsAbs(src) {
					return nil, fail("a volume's source is a volume name, not a path (a bind mount takes a path)")
				}
				return nil, fail("the source is not a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)")
			}
		case api.Mount_TYPE_TMPFS:
			em.Type = mount.TypeTmpfs
			if m.GetSource() != "" {
				return nil, fail("a tmpfs mount takes no source")
			}
		default:
			return nil, fail("unknown mount type")
		}
		out = append(out, em)
	}
	return out, nil
}

// stopSeconds is t's stop grace period in whole seconds, rounded up, as
// the engine takes it.
func stopSeconds(t *api.Task) (int, error) {
	grace := defaultStopGrace
	if d := t.GetSpec().GetContainer().GetStopGracePeriod(); d != nil {
		if err := d.CheckValid(); err != nil {
			return 0, fmt.Errorf("stop grace period: %w", err)
		}
		grace = d.AsDuration()
	}
	if grace < 0 {
		return 0, fmt.Errorf("stop grace period %s is negative", grace)
	}
	return int((grace + time.Second - 1) / time.Second), nil
}

// engineResources maps t's resource limits (and its memory reservation, a
// soft limit) to the engine's. A memory limit is a hard one: swap is not
// added to it.
func engineResources(t *api.Task) (container.Resources, error) {
	limits := t.GetSpec().GetResources().GetLimits()
	reserved := t.GetSpec().GetResources().GetReservations()
	var r container.Resources
	switch {
	case limits.GetNanoCpus() < 0:
		return r, fmt.Errorf("CPU limit %d is negative", limits.GetNanoCpus())
	case limits.GetMemoryBytes() < 0:
		return r, fmt.Errorf("memory limit %d is negative", limits.GetMemoryBytes())
	case reserved.GetMemoryBytes() < 0:
		return r, fmt.Errorf("memory reservation %d is negative", reserved.GetMemoryBytes())
	}
	r.NanoCPUs = limits.GetNanoCpus()
	if m := limits.GetMemoryBytes(); m > 0 {
		r.Memory = m
		r.MemorySwap = m
	}
	if m := reserved.GetMemoryBytes(); m > 0 && (r.Memory == 0 || m <= r.Memory) {
		r.MemoryReservation = m
	}
	return r, nil
}

// taskContainer is the create request of t's container; joinSandbox
// completes it once the sandbox exists.
func taskContainer(t *api.Task, nodeID string) (client.ContainerCreateOptions, error) {
	spec := t.GetSpec().GetContainer()
	if spec == nil {
		return client.ContainerCreateOptions{}, errors.New("the task has no container spec")
	}
	if spec.GetImage() == "" {
		return client.ContainerCreateOptions{}, errors.New("the task's container spec names no image")
	}
	mounts, err := engineMounts(spec.GetMounts())
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	stop, err := stopSeconds(t)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	res, err := engineResources(t)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	labels := maps.Clone(spec.GetLabels())
	if labels == nil {
		labels = make(map[string]string)
	}
	maps.Copy(labels, ownershipLabels(t, nodeID, RoleTask))
	return client.ContainerCreateOptions{
		Name: containerName(t, nodeID),
		Config: &container.Config{
			Image:       spec.GetImage(),
			Entrypoint:  spec.GetCommand(),
			Cmd:         spec.GetArgs(),
			Env:         taskEnv(t, nodeID),
			WorkingDir:  spec.GetDir(),
			User:        spec.GetUser(),
			Labels:      labels,
			StopTimeout: &stop,
		},
		HostConfig: &container.HostConfig{
			// shoal restarts tasks (as new tasks), never the engine.
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
			Mounts:        mounts,
			Resources:     res,
		},
	}, nil
}

// joinSandbox makes the task container of opts share the netns of the
// sandbox container sandboxID.
func joinSandbox(opts *client.ContainerCreateOptions, sandboxID string) {
	opts.HostConfig.NetworkMode = container.NetworkMode("container:" + sandboxID)
}

// sandboxNetNS is where the pinned netns is mounted in a sandbox.
const sandboxNetNS = "/netns"

// sandboxContainer is the create request of t's sandbox, running image
// (the pause image) in the netns pinned at pin. The engine gives it no
// network of its own (host mode, which costs the engine no namespace):
// its process joins the pin's namespace as it starts, so the namespace
// holds only what Networks attach. It may do that (CAP_SYS_ADMIN) and
// nothing else; it drops that too once it has.
func sandboxContainer(t *api.Task, nodeID, image, pin string) client.ContainerCreateOptions {
	stop := sandboxStopSeconds
	return client.ContainerCreateOptions{
		Name: sandboxName(t, nodeID),
		Config: &container.Config{
			Image:       image,
			Cmd:         []string{sandboxNetNS},
			Hostname:    hostname(t, nodeID),
			Labels:      ownershipLabels(t, nodeID, RoleSandbox),
			StopTimeout: &stop,
		},
		HostConfig: &container.HostConfig{
			NetworkMode:    "host",
			RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			CapAdd:         []string{"CAP_SYS_ADMIN"},
			Mounts:         []mount.Mount{{Type: mount.TypeBind, Source: pin, Target: sandboxNetNS, ReadOnly: true}},
		},
	}
}
