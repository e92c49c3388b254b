package scheduler

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/shoal/shoal/api"
)

func TestParseConstraint(t *testing.T) {
	tests := []struct {
		expr    string
		want    Constraint // Key, Op, Value
		wantErr error
	}{
		{expr: "node.id==abc", want: Constraint{Key: "node.id", Op: OpEqual, Value: "abc"}},
		{expr: " node.hostname != web-1 ", want: Constraint{Key: "node.hostname", Op: OpNotEqual, Value: "web-1"}},
		{expr: "NODE.ROLE==manager", want: Constraint{Key: "NODE.ROLE", Op: OpEqual, Value: "manager"}},
		{expr: "node.labels.zone==eu-1", want: Constraint{Key: "node.labels.zone", Op: OpEqual, Value: "eu-1"}},
		{expr: "engine.labels.disk!=hdd", want: Constraint{Key: "engine.labels.disk", Op: OpNotEqual, Value: "hdd"}},
		{expr: "node.platform.os==linux", want: Constraint{Key: "node.platform.os", Op: OpEqual, Value: "linux"}},
		{expr: "node.platform.arch==arm64", want: Constraint{Key: "node.platform.arch", Op: OpEqual, Value: "arm64"}},
		{expr: "node.labels.zone=eu-1", wantErr: ErrUnknownOperator},
		{expr: "node.labels.zone>eu-1", wantErr: ErrUnknownOperator},
		{expr: "node.labels.zone", wantErr: ErrUnknownOperator},
		{expr: "node.name==x", wantErr: ErrUnknownAttribute},
		{expr: "labels.zone==x", wantErr: ErrUnknownAttribute},
		{expr: "==x", wantErr: ErrEmptyKey},
		{expr: "node.labels.==x", wantErr: ErrEmptyKey},
		{expr: "engine.labels.!=x", wantErr: ErrEmptyKey},
		{expr: "node.id==", wantErr: ErrEmptyValue},
		{expr: "node.id==a==b", wantErr: ErrInvalidValue},
		{expr: "node.id!==a", wantErr: ErrInvalidValue},
		{expr: "node.role==Worker", want: Constraint{Key: "node.role", Op: OpEqual, Value: "Worker"}},
		{expr: "node.role==boss", wantErr: ErrInvalidValue},
		{expr: "node.role!=", wantErr: ErrEmptyValue},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := ParseConstraint(tt.expr)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseConstraint(%q) error = %v, want %v", tt.expr, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.expr) {
					t.Errorf("error %q does not name the expression %q", err, tt.expr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConstraint(%q): %v", tt.expr, err)
			}
			if got.Key != tt.want.Key || got.Op != tt.want.Op || got.Value != tt.want.Value {
				t.Errorf("ParseConstraint(%q) = %+v, want %+v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestParseConstraintsReportsEveryBadExpression(t *testing.T) {
	_, err := ParseConstraints([]string{"node.id==a", "node.foo==b", "node.labels.x=y"})
	if !errors.Is(err, ErrUnknownAttribute) || !errors.Is(err, ErrUnknownOperator) {
		t.Fatalf("error = %v, want both ErrUnknownAttribute and ErrUnknownOperator", err)
	}
	for _, expr := range []string{"node.foo==b", "node.labels.x=y"} {
		if !strings.Contains(err.Error(), expr) {
			t.Errorf("error %q does not name %q", err, expr)
		}
	}
	cs, err := ParseConstraints(nil)
	if err != nil || len(cs) != 0 {
		t.Errorf("ParseConstraints(nil) = %v, %v; want none, nil", cs, err)
	}
}

func TestConstraintMatch(t *testing.T) {
	n := node("n1", withLabel("zone", "eu-1"), withEngineLabel("disk", "ssd"), asManager)
	tests := []struct {
		expr string
		want bool
	}{
		{"node.id==n1", true},
		{"node.id==n2", false},
		{"node.id!=n2", true},
		{"node.hostname==host-n1", true},
		{"node.hostname==HOST-N1", true}, // values compare case-insensitively
		{"node.role==manager", true},
		{"node.role==worker", false},
		{"node.role!=worker", true},
		{"node.labels.zone==eu-1", true},
		{"node.labels.zone!=eu-1", false},
		{"node.labels.Zone==eu-1", false}, // label keys are case-sensitive
		{"node.labels.rack==r1", false},   // a missing label reads empty
		{"node.labels.rack!=r1", true},
		{"engine.labels.disk==ssd", true},
		{"engine.labels.disk==hdd", false},
		{"node.platform.os==linux", true},
		{"node.platform.arch==amd64", true}, // x86_64 is amd64
		{"node.platform.arch==x86_64", true},
		{"node.platform.arch!=arm64", true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := ParseConstraint(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Match(n); got != tt.want {
				t.Errorf("%s matches %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestValidatePlacement(t *testing.T) {
	tests := []struct {
		name    string
		p       *api.Placement
		wantErr error
		naming  string
	}{
		{name: "nil", p: nil},
		{name: "good", p: &api.Placement{
			Constraints: []string{"node.role==worker"},
			Preferences: []*api.PlacementPreference{{Spread: "node.labels.zone"}, {Spread: "engine.labels.rack"}},
		}},
		{name: "bad constraint", p: &api.Placement{Constraints: []string{"node.role==worker", "node.zone==a"}},
			wantErr: ErrUnknownAttribute, naming: `constraints[1]: constraint "node.zone==a"`},
		{name: "bad role", p: &api.Placement{Constraints: []string{"node.role==boss"}},
			wantErr: ErrInvalidValue, naming: `constraints[0]: constraint "node.role==boss": invalid value: node.role is manager or worker, not "boss"`},
		{name: "empty spread", p: &api.Placement{Preferences: []*api.PlacementPreference{{Spread: ""}}},
			wantErr: ErrEmptyKey, naming: "preferences[0].spread"},
		{name: "unknown spread", p: &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "node.labels.zone"}, {Spread: "zone"}}},
			wantErr: ErrUnknownAttribute, naming: `preferences[1].spread: spread "zone"`},
		{name: "spread over a label without key", p: &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "engine.labels."}}},
			wantErr: ErrEmptyKey, naming: "preferences[0].spread"},
		{name: "spread over hostnames", p: &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "NODE.HOSTNAME"}}},
			wantErr: ErrNotSpreadable, naming: "not over node.hostname"},
		{name: "spread over roles", p: &api.Placement{Preferences: []*api.PlacementPreference{{Spread: "node.role"}}},
			wantErr: ErrNotSpreadable, naming: "preferences[0].spread"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePlacement(tt.p)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ValidatePlacement: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.naming) {
				t.Fatalf("ValidatePlacement error = %v, want %v naming %q", err, tt.wantErr, tt.naming)
			}
			var pe *PlacementError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), pe.Field+": ") {
				t.Errorf("ValidatePlacement error = %v, want a *PlacementError that starts with its field", err)
			}
		})
	}
}

// Every bad part is reported, in the placement's order, each as its own
// *PlacementError.
func TestValidatePlacementReportsEveryBadPart(t *testing.T) {
	err := ValidatePlacement(&api.Placement{
		Constraints: []string{"node.id==a", "node.foo==b", "node.labels.x=y"},
		Preferences: []*api.PlacementPreference{{Spread: "node.id"}},
	})
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v (%T) does not join the parts' errors", err, err)
	}
	var fields []string
	for _, e := range joined.Unwrap() {
		var pe *PlacementError
		if !errors.As(e, &pe) {
			t.Fatalf("part error %v (%T) is not a *PlacementError", e, e)
		}
		fields = append(fields, pe.Field)
	}
	if want := []string{"constraints[1]", "constraints[2]", "preferences[0].spread"}; !slices.Equal(fields, want) {
		t.Errorf("refused fields %v, want %v", fields, want)
	}
}

func TestConstraintNamesNode(t *testing.T) {
	for expr, want := range map[string]bool{
		"node.id==n1":        true,
		"Node.Hostname==web": true,
		"node.id!=n1":        false,
		"node.role==manager": false,
		"node.labels.id==n1": false,
	} {
		c, err := ParseConstraint(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.NamesNode(); got != want {
			t.Errorf("%s: NamesNode() = %v, want %v", expr, got, want)
		}
	}
}
