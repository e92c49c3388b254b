package main

// This file owns parsing the values of service flags: CPUs, durations,
// enums and the comma-separated forms of --mount, --publish and --network
// (sizes are internal/units', shared with shoald). Each parser returns the
// reason a value is wrong; flagError puts the flag's name and the value in
// front of it.

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal/shoal/api"
)

// flagError says the value of --name is wrong and why.
func flagError(name, value string, reason error) error {
	return fmt.Errorf("invalid --%s %q: %w", name, value, reason)
}

// enumOption is one value an enum flag accepts and what it means.
type enumOption[E comparable] struct {
	name  string
	value E
}

// parseEnum maps s (case-insensitive) to its option's value.
func parseEnum[E comparable](s string, opts []enumOption[E]) (E, error) {
	names := make([]string, 0, len(opts))
	for _, o := range opts {
		if strings.EqualFold(s, o.name) {
			return o.value, nil
		}
		names = append(names, o.name)
	}
	var zero E
	return zero, fmt.Errorf("must be one of %s", strings.Join(names, ", "))
}

// enumName is the flag value meaning v, or v's proto name when no option does.
func enumName[E interface {
	comparable
	fmt.Stringer
}](v E, opts []enumOption[E]) string {
	for _, o := range opts {
		if o.value == v {
			return o.name
		}
	}
	return v.String()
}

var (
	restartConditions = []enumOption[api.RestartPolicy_Condition]{
		{"any", api.RestartPolicy_CONDITION_ANY},
		{"on-failure", api.RestartPolicy_CONDITION_ON_FAILURE},
		{"none", api.RestartPolicy_CONDITION_NONE},
	}
	updateFailureActions = []enumOption[api.UpdateConfig_FailureAction]{
		{"pause", api.UpdateConfig_FAILURE_ACTION_PAUSE},
		{"continue", api.UpdateConfig_FAILURE_ACTION_CONTINUE},
		{"rollback", api.UpdateConfig_FAILURE_ACTION_ROLLBACK},
	}
	// A failing rollback cannot roll back in turn.
	rollbackFailureActions = updateFailureActions[:2]
	updateOrders           = []enumOption[api.UpdateConfig_Order]{
		{"stop-first", api.UpdateConfig_ORDER_STOP_FIRST},
		{"start-first", api.UpdateConfig_ORDER_START_FIRST},
	}
	endpointModes = []enumOption[api.EndpointSpec_Mode]{
		{"vip", api.EndpointSpec_MODE_VIP},
		{"dnsrr", api.EndpointSpec_MODE_DNSRR},
	}
	publishModes = []enumOption[api.PortConfig_PublishMode]{
		{"ingress", api.PortConfig_PUBLISH_MODE_INGRESS},
		{"host", api.PortConfig_PUBLISH_MODE_HOST},
	}
	protocols = []enumOption[api.PortConfig_Protocol]{
		{"tcp", api.PortConfig_PROTOCOL_TCP},
		{"udp", api.PortConfig_PROTOCOL_UDP},
	}
	mountTypes = []enumOption[api.Mount_Type]{
		{"bind", api.Mount_TYPE_BIND},
		{"volume", api.Mount_TYPE_VOLUME},
		{"tmpfs", api.Mount_TYPE_TMPFS},
	}
)

// parseCount parses a whole number of things (replicas, attempts).
func parseCount(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err == nil {
		return n, nil
	}
	if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
		return 0, errors.New("must not be negative")
	}
	return 0, errors.New("want a whole number")
}

// parseRatio parses a fraction between 0 and 1.
func parseRatio(s string) (float32, error) {
	f, err := strconv.ParseFloat(s, 32)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, errors.New("want a number from 0 to 1")
	}
	return float32(f), nil
}

// parseDuration parses a non-negative Go duration ("10s", "1m30s").
func parseDuration(s string) (*durationpb.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, errors.New("want a duration like 10s or 1m30s")
	}
	if d < 0 {
		return nil, errors.New("must not be negative")
	}
	return durationpb.New(d), nil
}

var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// parseNanoCPUs parses a decimal number of CPUs ("1.5") into billionths.
func parseNanoCPUs(s string) (int64, error) {
	if !decimalRE.MatchString(s) {
		return 0, errors.New("want a number of CPUs like 0.5 or 2")
	}
	r, _ := new(big.Rat).SetString(s)
	r.Mul(r, big.NewRat(1e9, 1))
	if !r.IsInt() {
		return 0, errors.New("too precise: at most 9 decimal places")
	}
	if !r.Num().IsInt64() {
		return 0, errors.New("too large")
	}
	return r.Num().Int64(), nil
}

// parseKeyValue splits KEY=VALUE; a bare KEY has an empty value.
func parseKeyValue(s string) (key, value string, err error) {
	key, value, _ = strings.Cut(s, "=")
	if key == "" {
		return "", "", errors.New("want key=value with a non-empty key")
	}
	return key, value, nil
}

// parseKey checks a --*-rm value is a bare key.
func parseKey(s string) (string, error) {
	if s == "" || strings.Contains(s, "=") {
		return "", errors.New("want a key, without a value")
	}
	return s, nil
}

// parseEnv checks KEY=VALUE; a bare KEY takes its value from shoalctl's
// own environment, as docker does, and must be set there.
func parseEnv(s string) (string, error) {
	key, _, hasValue := strings.Cut(s, "=")
	switch {
	case key == "":
		return "", errors.New("want KEY=VALUE with a non-empty KEY")
	case strings.ContainsAny(key, " \t\n"):
		return "", errors.New("the variable name must not contain white space")
	case hasValue:
		return s, nil
	}
	value, ok := os.LookupEnv(key)
	if !ok {
		return "", fmt.Errorf("%s is not set in shoalctl's environment; give %s=VALUE", key, key)
	}
	return key + "=" + value, nil
}

// envKey is the variable an env entry sets.
func envKey(entry string) string {
	key, _, _ := strings.Cut(entry, "=")
	return key
}

// constraintRE matches "ATTR==VALUE" and "ATTR!=VALUE".
var constraintRE = regexp.MustCompile(`^\s*([^=!\s]+)\s*(==|!=)\s*(\S.*?)\s*$`)

// parseConstraint checks a placement constraint's form and returns it
// without surrounding space; the manager checks the attribute.
func parseConstraint(s string) (string, error) {
	m := constraintRE.FindStringSubmatch(s)
	if m == nil {
		return "", errors.New("want ATTR==VALUE or ATTR!=VALUE, e.g. node.labels.zone==a")
	}
	return m[1] + m[2] + m[3], nil
}

// parsePlacementPref parses "spread=node.labels.zone".
func parsePlacementPref(s string) (*api.PlacementPreference, error) {
	kind, attr, ok := strings.Cut(s, "=")
	if !ok || kind != "spread" || attr == "" {
		return nil, errors.New("want spread=ATTR, e.g. spread=node.labels.zone")
	}
	return &api.PlacementPreference{Spread: attr}, nil
}

// csvField is one field of a comma-separated flag value: "key=value", or
// a bare "key" (hasValue false).
type csvField struct {
	key, value string
	hasValue   bool
}

// csvFields splits "k1=v1,k2,k3=v3" into its fields, keys lower-cased.
func csvFields(s string) []csvField {
	var fields []csvField
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		fields = append(fields, csvField{key: strings.ToLower(k), value: v, hasValue: ok})
	}
	return fields
}

// parseBool reads a flag-like boolean field: a bare key means true.
func parseBool(f csvField) (bool, error) {
	if !f.hasValue {
		return true, nil
	}
	b, err := strconv.ParseBool(f.value)
	if err != nil {
		return false, fmt.Errorf("%s=%s: want true or false", f.key, f.value)
	}
	return b, nil
}

// parseMount parses docker's --mount form:
// type=bind|volume|tmpfs,source=SRC,target=DST[,readonly].
func parseMount(s string) (*api.Mount, error) {
	m := &api.Mount{Type: api.Mount_TYPE_VOLUME}
	for _, f := range csvFields(s) {
		var err error
		switch f.key {
		case "type":
			m.Type, err = parseEnum(f.value, mountTypes)
			if err != nil {
				err = fmt.Errorf("type %w", err)
			}
		case "source", "src":
			m.Source = f.value
		case "target", "destination", "dst":
			m.Target = f.value
		case "readonly", "ro":
			m.ReadOnly, err = parseBool(f)
		default:
			err = fmt.Errorf("unknown field %q (want type, source, target, readonly)", f.key)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case m.Target == "":
		return nil, errors.New("target is required")
	case !strings.HasPrefix(m.Target, "/"):
		return nil, errors.New("target must be an absolute path")
	case m.Type == api.Mount_TYPE_BIND && !strings.HasPrefix(m.Source, "/"):
		return nil, errors.New("a bind mount needs an absolute source path")
	case m.Type == api.Mount_TYPE_TMPFS && m.Source != "":
		return nil, errors.New("a tmpfs mount takes no source")
	}
	return m, nil
}

// shortPortRE matches docker's short --publish form [PUBLISHED:]TARGET[/PROTOCOL].
var shortPortRE = regexp.MustCompile(`^(?:([0-9]+):)?([0-9]+)(?:/([a-zA-Z]+))?$`)

// parsePort parses --publish: the long form
// published=8080,target=80,protocol=tcp,mode=ingress or the short form 8080:80/tcp.
func parsePort(s string) (*api.PortConfig, error) {
	p := &api.PortConfig{}
	if m := shortPortRE.FindStringSubmatch(s); m != nil {
		if err := setPortField(p, "target", m[2]); err != nil {
			return nil, err
		}
		if m[1] != "" {
			if err := setPortField(p, "published", m[1]); err != nil {
				return nil, err
			}
		}
		if m[3] != "" {
			if err := setPortField(p, "protocol", m[3]); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	if !strings.Contains(s, "=") {
		return nil, errors.New("want PUBLISHED:TARGET[/PROTOCOL] or published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]")
	}
	for _, f := range csvFields(s) {
		if err := setPortField(p, f.key, f.value); err != nil {
			return nil, err
		}
	}
	if p.TargetPort == 0 {
		return nil, errors.New("target is required")
	}
	return p, nil
}

func setPortField(p *api.PortConfig, key, value string) error {
	var err error
	switch key {
	case "published", "target":
		n, perr := strconv.ParseUint(value, 10, 16)
		if perr != nil || n == 0 {
			return fmt.Errorf("%s port %q: want a number from 1 to 65535", key, value)
		}
		if key == "published" {
			p.PublishedPort = uint32(n)
		} else {
			p.TargetPort = uint32(n)
		}
	case "protocol":
		if p.Protocol, err = parseEnum(value, protocols); err != nil {
			return fmt.Errorf("protocol %w", err)
		}
	case "mode":
		if p.PublishMode, err = parseEnum(value, publishModes); err != nil {
			return fmt.Errorf("mode %w", err)
		}
	default:
		return fmt.Errorf("unknown field %q (want published, target, protocol, mode)", key)
	}
	return nil
}

// portKey identifies a published port: its number and protocol. Ports the
// manager is to pick (published 0) are told apart by their target.
func portKey(p *api.PortConfig) string {
	proto := enumName(p.GetProtocol(), protocols)
	if p.GetPublishedPort() == 0 {
		return fmt.Sprintf("target %d/%s", p.GetTargetPort(), proto)
	}
	return fmt.Sprintf("%d/%s", p.GetPublishedPort(), proto)
}

var publishedPortRE = regexp.MustCompile(`^([0-9]+)(?:/([a-zA-Z]+))?$`)

// parsePortKey parses a --publish-rm value: PUBLISHED[/PROTOCOL], or a
// --publish form whose published port and protocol are used.
func parsePortKey(s string) (string, error) {
	if m := publishedPortRE.FindStringSubmatch(s); m != nil {
		p := &api.PortConfig{}
		if err := setPortField(p, "published", m[1]); err != nil {
			return "", err
		}
		if m[2] != "" {
			if err := setPortField(p, "protocol", m[2]); err != nil {
				return "", err
			}
		}
		return portKey(p), nil
	}
	p, err := parsePort(s)
	if err != nil {
		return "", err
	}
	return portKey(p), nil
}

// parseNetwork parses --network: a network name or ID, or
// name=NET[,alias=ALIAS...].
func parseNetwork(s string) (*api.NetworkAttachmentConfig, error) {
	if !strings.Contains(s, "=") {
		if s == "" || strings.Contains(s, ",") {
			return nil, errors.New("want a network name or name=NET,alias=ALIAS")
		}
		return &api.NetworkAttachmentConfig{Target: s}, nil
	}
	n := &api.NetworkAttachmentConfig{}
	for _, f := range csvFields(s) {
		switch f.key {
		case "name", "target":
			n.Target = f.value
		case "alias":
			if f.value == "" {
				return nil, errors.New("alias must not be empty")
			}
			n.Aliases = append(n.Aliases, f.value)
		default:
			return nil, fmt.Errorf("unknown field %q (want name, alias)", f.key)
		}
	}
	if n.Target == "" {
		return nil, errors.New("name is required")
	}
	return n, nil
}
