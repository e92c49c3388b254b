package main

// This file owns the flags describing a service: their names (docker's),
// which of create and update has each, and how a value changes a
// ServiceSpec. Create applies the flags given to a default spec; update
// applies only the flags given to the service's current spec, so whatever
// no flag names stays as it was. The lists (service_spec.go) are set whole
// by create (--env) and edited by update (--env-add, --env-rm).

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/shoal/shoal/api"
	"github.com/shoal/shoal/internal/units"
)

// flagScope says which commands have a flag.
type flagScope int

const (
	onCreate flagScope = 1 << iota
	onUpdate
	onBoth = onCreate | onUpdate
)

// textValue is a string flag whose --help shows a type ("bytes", "duration").
type textValue struct {
	value *string
	typ   string
}

func (v *textValue) String() string     { return *v.value }
func (v *textValue) Set(s string) error { *v.value = s; return nil }
func (v *textValue) Type() string       { return v.typ }

// scalarFlag is a flag setting one field of the spec.
type scalarFlag struct {
	name, short, typ, usage string
	// def is what --help shows as the default; create's base spec holds it.
	def   string
	scope flagScope
	apply func(spec *api.ServiceSpec, value string) error
}

// scalarFlags are applied in this order: --mode before --replicas, so both
// see whether the service is global.
var scalarFlags = slices.Concat([]scalarFlag{
	{name: "name", typ: "string", usage: "service name (default: the image's name and a random suffix)", scope: onCreate,
		apply: func(s *api.ServiceSpec, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			annotations(s).Name = v
			return nil
		}},
	{name: "mode", typ: "string", usage: "service mode: replicated or global", def: "replicated", scope: onCreate,
		apply: func(s *api.ServiceSpec, v string) error {
			switch strings.ToLower(v) {
			case "replicated":
			case "global":
				s.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
			default:
				return errors.New("must be one of replicated, global")
			}
			return nil
		}},
	{name: "replicas", typ: "uint", usage: "number of tasks", def: "1", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) error {
			n, err := parseCount(v)
			if err != nil {
				return err
			}
			if s.GetGlobal() != nil {
				return errors.New("a global service runs one task per node; replicas apply to replicated services only")
			}
			s.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: n}}
			return nil
		}},
	{name: "replicas-max-per-node", typ: "uint", usage: "most tasks per node (0 for no limit)", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) error {
			n, err := parseCount(v)
			if err != nil {
				return err
			}
			if s.GetGlobal() != nil {
				return errors.New("a global service runs one task per node already")
			}
			placement(s).MaxReplicas = n
			return nil
		}},
	{name: "image", typ: "string", usage: "image the tasks run", scope: onUpdate,
		apply: func(s *api.ServiceSpec, v string) error {
			if err := checkImage(v); err != nil {
				return err
			}
			container(s).Image = v
			return nil
		}},
	{name: "workdir", short: "w", typ: "string", usage: "working directory inside the container", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) error { container(s).Dir = v; return nil }},
	{name: "user", short: "u", typ: "string", usage: "user[:group] the container runs as", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) error { container(s).User = v; return nil }},
	{name: "stop-grace-period", typ: "duration", usage: "time to wait before killing a stopping container (default 10s)", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			container(s).StopGracePeriod, err = parseDuration(v)
			return err
		}},
	{name: "reserve-cpu", typ: "decimal", usage: "CPUs reserved for each task, e.g. 0.5", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			resources(s, reserve).NanoCpus, err = parseNanoCPUs(v)
			return err
		}},
	{name: "limit-cpu", typ: "decimal", usage: "CPUs each task may use, e.g. 1.5", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			resources(s, limit).NanoCpus, err = parseNanoCPUs(v)
			return err
		}},
	{name: "reserve-memory", typ: "bytes", usage: "memory reserved for each task, e.g. 512m", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			resources(s, reserve).MemoryBytes, err = units.ParseBytes(v)
			return err
		}},
	{name: "limit-memory", typ: "bytes", usage: "memory each task may use, e.g. 1g", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			resources(s, limit).MemoryBytes, err = units.ParseBytes(v)
			return err
		}},
	{name: "restart-condition", typ: "string", usage: "when to restart a task: any, on-failure or none (default any)", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			restartPolicy(s).Condition, err = parseEnum(v, restartConditions)
			return err
		}},
	{name: "restart-delay", typ: "duration", usage: "delay between restart attempts (default 5s)", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			restartPolicy(s).Delay, err = parseDuration(v)
			return err
		}},
	{name: "restart-max-attempts", typ: "uint", usage: "most restarts within --restart-window (0 for no limit)", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			restartPolicy(s).MaxAttempts, err = parseCount(v)
			return err
		}},
	{name: "restart-window", typ: "duration", usage: "window --restart-max-attempts counts in (0 for all time)", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			restartPolicy(s).Window, err = parseDuration(v)
			return err
		}},
	{name: "endpoint-mode", typ: "string", usage: "how clients reach the tasks: vip or dnsrr (default vip)", scope: onBoth,
		apply: func(s *api.ServiceSpec, v string) (err error) {
			endpoint(s).Mode, err = parseEnum(v, endpointModes)
			return err
		}},
	{name: "ip-hold", typ: "duration", scope: onBoth,
		usage: "how long the addresses of slots removed by a scale-down stay reserved for them, e.g. 10m\n" +
			"(0: until the service is removed, the default)",
		apply: func(s *api.ServiceSpec, v string) error {
			d, err := parseDuration(v)
			if err != nil {
				return err
			}
			s.IpHold = d
			if d.AsDuration() == 0 {
				s.IpHold = nil // unset and zero mean the same; unset keeps specs comparable
			}
			return nil
		}},
},
	updateConfigFlags("update", "an update", func(s *api.ServiceSpec) **api.UpdateConfig { return &s.Update }, updateFailureActions),
	updateConfigFlags("rollback", "a rollback", func(s *api.ServiceSpec) **api.UpdateConfig { return &s.Rollback }, rollbackFailureActions),
)

// updateConfigFlags are the --update-* or --rollback-* flags.
func updateConfigFlags(prefix, what string, field func(*api.ServiceSpec) **api.UpdateConfig,
	actions []enumOption[api.UpdateConfig_FailureAction]) []scalarFlag {
	cfg := func(s *api.ServiceSpec) *api.UpdateConfig {
		p := field(s)
		if *p == nil {
			*p = &api.UpdateConfig{}
		}
		return *p
	}
	actionNames := make([]string, len(actions))
	for i, a := range actions {
		actionNames[i] = a.name
	}
	return []scalarFlag{
		{name: prefix + "-parallelism", typ: "uint", def: "1", scope: onBoth,
			usage: "tasks changed at once in " + what + " (0 for all)",
			apply: func(s *api.ServiceSpec, v string) (err error) {
				cfg(s).Parallelism, err = parseCount(v)
				return err
			}},
		{name: prefix + "-delay", typ: "duration", scope: onBoth,
			usage: "delay between groups of tasks in " + what,
			apply: func(s *api.ServiceSpec, v string) (err error) {
				cfg(s).Delay, err = parseDuration(v)
				return err
			}},
		{name: prefix + "-failure-action", typ: "string", scope: onBoth,
			usage: "what a failure in " + what + " does: " + strings.Join(actionNames, ", ") + " (default pause)",
			apply: func(s *api.ServiceSpec, v string) (err error) {
				cfg(s).FailureAction, err = parseEnum(v, actions)
				return err
			}},
		{name: prefix + "-monitor", typ: "duration", scope: onBoth,
			usage: "how long each new task is watched for failure in " + what + " (default 5s)",
			apply: func(s *api.ServiceSpec, v string) (err error) {
				cfg(s).Monitor, err = parseDuration(v)
				return err
			}},
		{name: prefix + "-max-failure-ratio", typ: "float", scope: onBoth,
			usage: "fraction of tasks that may fail in " + what + " (0 to 1)",
			apply: func(s *api.ServiceSpec, v string) (err error) {
				cfg(s).MaxFailureRatio, err = parseRatio(v)
				return err
			}},
		{name: prefix + "-order", typ: "string", scope: onBoth,
			usage: "order of " + what + ": stop-first or start-first (default stop-first)",
			apply: func(s *api.ServiceSpec, v string) (err error) {
				cfg(s).Order, err = parseEnum(v, updateOrders)
				return err
			}},
	}
}

// checkImage rejects an image reference no registry would accept.
func checkImage(image string) error {
	switch {
	case image == "":
		return errors.New("the image must not be empty")
	case strings.ContainsAny(image, " \t\n"):
		return errors.New("an image reference has no white space")
	}
	return nil
}

// serviceNameSuffix makes default service names unique; tests fix it.
var serviceNameSuffix = func() string { return api.NewID()[:5] }

// defaultServiceName names a service created without --name after its
// image, with a random suffix: "nginx-x3k9q" for registry:5000/nginx:1.27.
// (Docker's manager makes up a name; shoal's wants one.)
func defaultServiceName(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	base, _, _ := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
	base = strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.-", r)) {
			return r
		}
		return '-'
	}, base)
	base = strings.TrimLeft(base, "_.-")
	if base == "" {
		base = "service"
	}
	const maxBase = 50 // room for the suffix within a name's 63 characters
	if len(base) > maxBase {
		base = base[:maxBase]
	}
	return base + "-" + serviceNameSuffix()
}

// serviceFlags holds the raw values of one command's service flags.
type serviceFlags struct {
	scope   flagScope
	scalars map[string]*string
	lists   map[string]*[]string
	pins    *pinFlags
}

// addServiceFlags registers the service flags of scope on cmd.
func addServiceFlags(cmd *cobra.Command, scope flagScope) *serviceFlags {
	sf := &serviceFlags{scope: scope, scalars: map[string]*string{}, lists: map[string]*[]string{}}
	flags := cmd.Flags()
	for _, f := range scalarFlags {
		if f.scope&scope == 0 {
			continue
		}
		var v string
		if scope == onCreate {
			v = f.def // update changes only what is given: it has no defaults
		}
		sf.scalars[f.name] = &v
		flags.VarP(&textValue{value: &v, typ: f.typ}, f.name, f.short, f.usage)
	}
	for _, l := range listFlags {
		if scope == onCreate {
			sf.lists[l.name] = flags.StringArrayP(l.name, l.short, nil, l.usage+"; repeatable")
			continue
		}
		sf.lists[l.name+"-add"] = flags.StringArray(l.name+"-add", nil, "add or replace "+l.usage+"; repeatable")
		sf.lists[l.name+"-rm"] = flags.StringArray(l.name+"-rm", nil, "remove "+l.rmUsage+"; repeatable")
	}
	sf.pins = addPinFlags(cmd, scope)
	return sf
}

// newSpec builds create's spec: docker's defaults, IMAGE and its
// arguments, then every flag given but the pins, which it only checks:
// applyPins writes them once networks can be resolved.
func (sf *serviceFlags) newSpec(cmd *cobra.Command, image string, args []string) (*api.ServiceSpec, error) {
	if err := checkImage(image); err != nil {
		return nil, fmt.Errorf("invalid IMAGE %q: %w", image, err)
	}
	spec := &api.ServiceSpec{
		Annotations: &api.Annotations{},
		Task:        &api.TaskSpec{Container: &api.ContainerSpec{Image: image, Args: args}},
		Mode:        &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1}},
		Update:      &api.UpdateConfig{Parallelism: 1},
		Rollback:    &api.UpdateConfig{Parallelism: 1},
	}
	if err := sf.applyScalars(cmd, spec); err != nil {
		return nil, err
	}
	if spec.Annotations.Name == "" {
		spec.Annotations.Name = defaultServiceName(image)
	}
	for _, l := range listFlags {
		if cmd.Flags().Changed(l.name) {
			if err := l.edit(spec, l.name, *sf.lists[l.name], "", nil); err != nil {
				return nil, err
			}
		}
	}
	if err := sf.pins.parse(); err != nil {
		return nil, err
	}
	return spec, nil
}

// applyPins writes the --ip and --ip-range pins into spec's attachments;
// resolve names the networks the flags and the attachments give.
func (sf *serviceFlags) applyPins(spec *api.ServiceSpec, resolve networkResolver) error {
	return sf.pins.apply(spec, resolve)
}

// checkPins checks the pin flags' values, before anything is sent.
func (sf *serviceFlags) checkPins() error { return sf.pins.parse() }

// edit changes spec as update's flags say, leaving everything else alone.
// Pins apply last, to the networks as edited.
func (sf *serviceFlags) edit(cmd *cobra.Command, spec *api.ServiceSpec, resolve networkResolver) error {
	if err := sf.applyScalars(cmd, spec); err != nil {
		return err
	}
	for _, l := range listFlags {
		add, rm := l.name+"-add", l.name+"-rm"
		if cmd.Flags().Changed(add) || cmd.Flags().Changed(rm) {
			if err := l.edit(spec, add, *sf.lists[add], rm, *sf.lists[rm]); err != nil {
				return err
			}
		}
	}
	return sf.applyPins(spec, resolve)
}

// changed lists the service flags given, in --flag form.
func (sf *serviceFlags) changed(cmd *cobra.Command) []string {
	var names []string
	for _, name := range slices.Sorted(maps.Keys(sf.scalars)) {
		if cmd.Flags().Changed(name) {
			names = append(names, "--"+name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(sf.lists)) {
		if cmd.Flags().Changed(name) {
			names = append(names, "--"+name)
		}
	}
	for _, name := range sf.pins.names() {
		if cmd.Flags().Changed(name) {
			names = append(names, "--"+name)
		}
	}
	return names
}

func (sf *serviceFlags) applyScalars(cmd *cobra.Command, spec *api.ServiceSpec) error {
	for _, f := range scalarFlags {
		if f.scope&sf.scope == 0 || !cmd.Flags().Changed(f.name) {
			continue
		}
		value := *sf.scalars[f.name]
		if err := f.apply(spec, value); err != nil {
			return flagError(f.name, value, err)
		}
	}
	return nil
}
