package main

// This file owns the lists of a service spec that flags edit (env, labels,
// mounts, constraints, placement preferences, ports, networks): how each is
// parsed, keyed, read and written, and the accessors that create the parts
// of a spec a flag writes to. Update removes entries first, then adds; an
// added entry replaces the one with the same key in place, so later values
// win, also within create's flags.

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/shoal/shoal/api"
)

// listFlag is a list in the spec: create's --NAME sets it, update's
// --NAME-add and --NAME-rm edit it.
type listFlag struct {
	name, short, usage string
	// rmUsage says what a --NAME-rm value names.
	rmUsage string
	// edit removes the entries rm names, then adds or replaces those of add.
	edit func(spec *api.ServiceSpec, addFlag string, add []string, rmFlag string, rm []string) error
}

// listCodec tells how one list of the spec is read, written and keyed.
type listCodec[E any] struct {
	parse    func(string) (E, error)
	key      func(E) string
	parseKey func(string) (string, error)
	get      func(*api.ServiceSpec) []E
	put      func(*api.ServiceSpec, []E)
}

func newListFlag[E any](name, short, usage, rmUsage string, c listCodec[E]) listFlag {
	return listFlag{name: name, short: short, usage: usage, rmUsage: rmUsage,
		edit: func(spec *api.ServiceSpec, addFlag string, add []string, rmFlag string, rm []string) error {
			removed := map[string]bool{}
			for _, v := range rm {
				k, err := c.parseKey(v)
				if err != nil {
					return flagError(rmFlag, v, err)
				}
				removed[k] = true
			}
			before := c.get(spec)
			entries := slices.DeleteFunc(slices.Clone(before), func(e E) bool { return removed[c.key(e)] })
			for _, v := range add {
				e, err := c.parse(v)
				if err != nil {
					return flagError(addFlag, v, err)
				}
				if i := slices.IndexFunc(entries, func(old E) bool { return c.key(old) == c.key(e) }); i >= 0 {
					entries[i] = e
				} else {
					entries = append(entries, e)
				}
			}
			if len(before) > 0 || len(entries) > 0 {
				c.put(spec, entries)
			}
			return nil
		}}
}

// label is one entry of a label map.
type label struct{ key, value string }

func labelCodec(labels func(s *api.ServiceSpec, alloc bool) *map[string]string) listCodec[label] {
	return listCodec[label]{
		parse: func(s string) (label, error) {
			k, v, err := parseKeyValue(s)
			return label{k, v}, err
		},
		key:      func(l label) string { return l.key },
		parseKey: parseKey,
		get: func(s *api.ServiceSpec) []label {
			m := *labels(s, false)
			out := make([]label, 0, len(m))
			for _, k := range slices.Sorted(maps.Keys(m)) {
				out = append(out, label{k, m[k]})
			}
			return out
		},
		put: func(s *api.ServiceSpec, ls []label) {
			m := make(map[string]string, len(ls))
			for _, l := range ls {
				m[l.key] = l.value
			}
			*labels(s, true) = m
		},
	}
}

func identity(s string) string { return s }

var listFlags = []listFlag{
	newListFlag("env", "e", "an environment variable (KEY=VALUE)", "an environment variable by KEY",
		listCodec[string]{parse: parseEnv, key: envKey, parseKey: parseKey,
			get: func(s *api.ServiceSpec) []string { return s.GetTask().GetContainer().GetEnv() },
			put: func(s *api.ServiceSpec, v []string) { container(s).Env = v }}),
	newListFlag("label", "l", "a service label (key=value)", "a service label by key",
		labelCodec(func(s *api.ServiceSpec, alloc bool) *map[string]string {
			if !alloc && s.GetAnnotations() == nil {
				return new(map[string]string)
			}
			return &annotations(s).Labels
		})),
	newListFlag("container-label", "", "a container label (key=value)", "a container label by key",
		labelCodec(func(s *api.ServiceSpec, alloc bool) *map[string]string {
			if !alloc && s.GetTask().GetContainer() == nil {
				return new(map[string]string)
			}
			return &container(s).Labels
		})),
	newListFlag("mount", "", "a mount (type=bind|volume|tmpfs,source=SRC,target=DST[,readonly])", "a mount by its target path",
		listCodec[*api.Mount]{parse: parseMount, key: (*api.Mount).GetTarget,
			parseKey: func(s string) (string, error) {
				if !strings.HasPrefix(s, "/") {
					return "", errors.New("want the mount's target, an absolute path")
				}
				return s, nil
			},
			get: func(s *api.ServiceSpec) []*api.Mount { return s.GetTask().GetContainer().GetMounts() },
			put: func(s *api.ServiceSpec, v []*api.Mount) { container(s).Mounts = v }}),
	newListFlag("constraint", "", "a placement constraint (ATTR==VALUE or ATTR!=VALUE)", "a placement constraint",
		listCodec[string]{parse: parseConstraint, key: identity, parseKey: parseConstraint,
			get: func(s *api.ServiceSpec) []string { return s.GetTask().GetPlacement().GetConstraints() },
			put: func(s *api.ServiceSpec, v []string) { placement(s).Constraints = v }}),
	newListFlag("placement-pref", "", "a placement preference (spread=node.labels.KEY)", "a placement preference",
		listCodec[*api.PlacementPreference]{parse: parsePlacementPref, key: (*api.PlacementPreference).GetSpread,
			parseKey: func(s string) (string, error) {
				p, err := parsePlacementPref(s)
				return p.GetSpread(), err
			},
			get: func(s *api.ServiceSpec) []*api.PlacementPreference {
				return s.GetTask().GetPlacement().GetPreferences()
			},
			put: func(s *api.ServiceSpec, v []*api.PlacementPreference) { placement(s).Preferences = v }}),
	newListFlag("publish", "p", "a published port (8080:80[/udp] or published=8080,target=80,protocol=tcp,mode=ingress|host)",
		"a published port by PUBLISHED[/PROTOCOL]",
		listCodec[*api.PortConfig]{parse: parsePort, key: portKey, parseKey: parsePortKey,
			get: func(s *api.ServiceSpec) []*api.PortConfig { return s.GetEndpoint().GetPorts() },
			put: func(s *api.ServiceSpec, v []*api.PortConfig) { endpoint(s).Ports = v }}),
	newListFlag("network", "", "a network to attach to (NAME or name=NAME,alias=ALIAS)", "a network by name",
		listCodec[*api.NetworkAttachmentConfig]{parse: parseNetwork, key: (*api.NetworkAttachmentConfig).GetTarget,
			parseKey: func(s string) (string, error) {
				if s == "" || strings.Contains(s, "=") {
					return "", errors.New("want a network name")
				}
				return s, nil
			},
			get: func(s *api.ServiceSpec) []*api.NetworkAttachmentConfig { return s.GetTask().GetNetworks() },
			put: func(s *api.ServiceSpec, v []*api.NetworkAttachmentConfig) { task(s).Networks = v }}),
}

// The accessors below return a part of the spec, creating it when missing.

func annotations(s *api.ServiceSpec) *api.Annotations {
	if s.Annotations == nil {
		s.Annotations = &api.Annotations{}
	}
	return s.Annotations
}

func task(s *api.ServiceSpec) *api.TaskSpec {
	if s.Task == nil {
		s.Task = &api.TaskSpec{}
	}
	return s.Task
}

func container(s *api.ServiceSpec) *api.ContainerSpec {
	t := task(s)
	if t.Container == nil {
		t.Container = &api.ContainerSpec{}
	}
	return t.Container
}

func placement(s *api.ServiceSpec) *api.Placement {
	t := task(s)
	if t.Placement == nil {
		t.Placement = &api.Placement{}
	}
	return t.Placement
}

func restartPolicy(s *api.ServiceSpec) *api.RestartPolicy {
	t := task(s)
	if t.Restart == nil {
		t.Restart = &api.RestartPolicy{}
	}
	return t.Restart
}

type resourceKind int

const (
	reserve resourceKind = iota
	limit
)

func resources(s *api.ServiceSpec, kind resourceKind) *api.Resources {
	t := task(s)
	if t.Resources == nil {
		t.Resources = &api.ResourceRequirements{}
	}
	p := &t.Resources.Reservations
	if kind == limit {
		p = &t.Resources.Limits
	}
	*p = cmp.Or(*p, &api.Resources{})
	return *p
}

func endpoint(s *api.ServiceSpec) *api.EndpointSpec {
	if s.Endpoint == nil {
		s.Endpoint = &api.EndpointSpec{}
	}
	return s.Endpoint
}
