package scheduler

// This file owns the placement language: node attributes ("node.hostname",
// "node.labels.zone"), constraints over them ("node.role==manager") and the
// spread attribute of placement preferences. It is the one parser of them:
// the Control API validates a spec with ValidatePlacement, the filters and
// the spreading match what ParseConstraints and parseSpread return.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shoal/shoal/api"
)

// Errors a constraint or preference is refused with; test with errors.Is.
var (
	ErrUnknownOperator  = errors.New("unknown operator (want == or !=)")
	ErrUnknownAttribute = errors.New("unknown attribute")
	ErrEmptyKey         = errors.New("empty key")
	ErrEmptyValue       = errors.New("empty value")
	ErrInvalidValue     = errors.New("invalid value")
	ErrNotSpreadable    = errors.New("tasks spread only over node.labels.KEY or engine.labels.KEY")
)

// What an attribute may be, for the errors refusing one.
const (
	constraintAttributes = "node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.KEY or engine.labels.KEY"
	spreadAttributes     = "node.labels.KEY or engine.labels.KEY"
)

// Operator compares a node attribute with a constraint's value.
type Operator int

// The operators a constraint may use.
const (
	OpEqual    Operator = iota // ==
	OpNotEqual                 // !=
)

func (o Operator) String() string {
	if o == OpNotEqual {
		return "!="
	}
	return "=="
}

// Constraint is one parsed placement constraint, e.g. node.labels.zone==a.
type Constraint struct {
	// Key is the attribute as written, e.g. "node.labels.zone".
	Key   string
	Op    Operator
	Value string
	attr  attribute
}

func (c Constraint) String() string { return c.Key + c.Op.String() + c.Value }

// Match reports whether node n satisfies c. Values compare case-insensitively;
// a label the node lacks reads as empty, so "node.labels.x!=y" matches it.
func (c Constraint) Match(n *api.Node) bool {
	eq := c.attr.equal(c.attr.value(n), c.Value)
	if c.Op == OpEqual {
		return eq
	}
	return !eq
}

// MatchAll reports whether n satisfies every constraint of cs.
func MatchAll(cs []Constraint, n *api.Node) bool {
	for _, c := range cs {
		if !c.Match(n) {
			return false
		}
	}
	return true
}

// ParseConstraints parses placement constraints of the form ATTR==VALUE or
// ATTR!=VALUE. It returns every bad expression's error, joined; each names
// the expression and wraps one of the Err* reasons.
func ParseConstraints(exprs []string) ([]Constraint, error) {
	out := make([]Constraint, 0, len(exprs))
	var errs []error
	for _, e := range exprs {
		c, err := ParseConstraint(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ParseConstraint parses one constraint expression. Besides the syntax it
// checks what can be checked without nodes: the attribute exists, and a
// node.role is manager or worker (in any case).
func ParseConstraint(expr string) (Constraint, error) {
	c, err := parseConstraint(expr)
	if err != nil {
		return Constraint{}, fmt.Errorf("constraint %q: %w", expr, err)
	}
	return c, nil
}

func parseConstraint(expr string) (Constraint, error) {
	i, op := operatorIndex(expr)
	if i < 0 {
		return Constraint{}, ErrUnknownOperator
	}
	key := strings.TrimSpace(expr[:i])
	value := strings.TrimSpace(expr[i+2:])
	if key == "" {
		return Constraint{}, fmt.Errorf("%w: no attribute before %s", ErrEmptyKey, op)
	}
	attr, err := parseAttribute(key)
	if errors.Is(err, ErrUnknownAttribute) {
		return Constraint{}, fmt.Errorf("%w (want %s)", err, constraintAttributes)
	}
	if err != nil {
		return Constraint{}, err
	}
	switch {
	case value == "":
		return Constraint{}, fmt.Errorf("%w: no value after %s", ErrEmptyValue, op)
	case strings.ContainsRune(value, '='):
		return Constraint{}, fmt.Errorf("%w: %q holds a second operator", ErrInvalidValue, value)
	case attr.kind == attrRole && !strings.EqualFold(value, "manager") && !strings.EqualFold(value, "worker"):
		return Constraint{}, fmt.Errorf("%w: node.role is manager or worker, not %q", ErrInvalidValue, value)
	}
	return Constraint{Key: key, Op: op, Value: value, attr: attr}, nil
}

// NamesNode reports whether c asks for one particular node: node.id==X or
// node.hostname==X. A service so constrained runs only if such a node
// exists, which the Control API checks when the spec is written.
func (c Constraint) NamesNode() bool {
	return c.Op == OpEqual && (c.attr.kind == attrID || c.attr.kind == attrHostname)
}

// operatorIndex finds the first "==" or "!=" in s; -1 when there is none.
func operatorIndex(s string) (int, Operator) {
	eq, ne := strings.Index(s, "=="), strings.Index(s, "!=")
	switch {
	case eq < 0 && ne < 0:
		return -1, OpEqual
	case ne < 0 || (eq >= 0 && eq < ne):
		return eq, OpEqual
	default:
		return ne, OpNotEqual
	}
}

// PlacementError refuses one part of a placement. Field names the part as
// the API's protobuf does, relative to the placement: "constraints[2]" or
// "preferences[0].spread". Err says why and wraps one of the Err* reasons.
type PlacementError struct {
	Field string
	Err   error
}

func (e *PlacementError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *PlacementError) Unwrap() error { return e.Err }

// ValidatePlacement checks everything of a placement the scheduler parses:
// its constraints and the spread attribute of each preference. It returns
// a *PlacementError for every bad part, joined, in the placement's order.
func ValidatePlacement(p *api.Placement) error {
	var errs []error
	for i, expr := range p.GetConstraints() {
		if _, err := ParseConstraint(expr); err != nil {
			errs = append(errs, &PlacementError{Field: fmt.Sprintf("constraints[%d]", i), Err: err})
		}
	}
	for i, pref := range p.GetPreferences() {
		if _, err := parseSpread(pref.GetSpread()); err != nil {
			errs = append(errs, &PlacementError{Field: fmt.Sprintf("preferences[%d].spread", i), Err: err})
		}
	}
	return errors.Join(errs...)
}

// parseSpread reads the attribute a placement preference spreads over. As
// in docker, that is a label: tasks spread over nodes anyway, so spreading
// over node.id or node.hostname adds nothing, and role and platform are
// what constraints are for.
func parseSpread(s string) (attribute, error) {
	key := strings.TrimSpace(s)
	if key == "" {
		return attribute{}, fmt.Errorf("spread: %w (want %s)", ErrEmptyKey, spreadAttributes)
	}
	a, err := parseAttribute(key)
	switch {
	case errors.Is(err, ErrUnknownAttribute):
		return attribute{}, fmt.Errorf("spread %q: %w (want %s)", s, err, spreadAttributes)
	case err != nil:
		return attribute{}, fmt.Errorf("spread %q: %w", s, err)
	case a.kind != attrNodeLabel && a.kind != attrEngineLabel:
		return attribute{}, fmt.Errorf("spread %q: %w, not over %s: tasks spread over nodes anyway, "+
			"and a constraint chooses nodes by role or platform", s, ErrNotSpreadable, strings.ToLower(key))
	}
	return a, nil
}

// attrKind is what part of a node an attribute reads.
type attrKind int

const (
	attrID attrKind = iota
	attrHostname
	attrRole
	attrOS
	attrArch
	attrNodeLabel
	attrEngineLabel
)

// attribute is a parsed node attribute; label is the label key for the two
// label kinds (case-sensitive, as label keys are).
type attribute struct {
	kind  attrKind
	label string
}

const (
	nodeLabelPrefix   = "node.labels."
	engineLabelPrefix = "engine.labels."
)

// parseAttribute reads an attribute name; its fixed part is case-insensitive.
func parseAttribute(key string) (attribute, error) {
	lower := strings.ToLower(key)
	switch lower {
	case "node.id":
		return attribute{kind: attrID}, nil
	case "node.hostname":
		return attribute{kind: attrHostname}, nil
	case "node.role":
		return attribute{kind: attrRole}, nil
	case "node.platform.os":
		return attribute{kind: attrOS}, nil
	case "node.platform.arch":
		return attribute{kind: attrArch}, nil
	}
	for _, p := range []struct {
		prefix string
		kind   attrKind
	}{{nodeLabelPrefix, attrNodeLabel}, {engineLabelPrefix, attrEngineLabel}} {
		if strings.HasPrefix(lower, p.prefix) {
			label := key[len(p.prefix):]
			if label == "" {
				return attribute{}, fmt.Errorf("%w: %q names no label", ErrEmptyKey, key)
			}
			return attribute{kind: p.kind, label: label}, nil
		}
	}
	return attribute{}, fmt.Errorf("%w %q", ErrUnknownAttribute, key)
}

// value reads the attribute of n; "" when n lacks it.
func (a attribute) value(n *api.Node) string {
	switch a.kind {
	case attrID:
		return n.GetId()
	case attrHostname:
		return n.GetDescription().GetHostname()
	case attrRole:
		if n.GetRole() == api.NodeRole_NODE_ROLE_MANAGER {
			return "manager"
		}
		return "worker"
	case attrOS:
		return n.GetDescription().GetOs()
	case attrArch:
		return n.GetDescription().GetArch()
	case attrNodeLabel:
		return n.GetSpec().GetAnnotations().GetLabels()[a.label]
	case attrEngineLabel:
		return n.GetDescription().GetEngineLabels()[a.label]
	}
	return ""
}

// equal compares a node's value with a wanted one: case-insensitively, and
// for architectures after mapping the kernel's names to Go's.
func (a attribute) equal(have, want string) bool {
	if a.kind == attrArch {
		return strings.EqualFold(normalizeArch(have), normalizeArch(want))
	}
	return strings.EqualFold(have, want)
}

// normalizeArch maps the names uname reports to the ones images use.
func normalizeArch(arch string) string {
	switch strings.ToLower(arch) {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "i386", "i686":
		return "386"
	}
	return arch
}
