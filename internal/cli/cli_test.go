package cli

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal/shoal/api"
)

func TestArgsAndFlagMistakes(t *testing.T) {
	for _, tt := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"exact args met", []string{"pair", "a", "b"}, 0, ""},
		{"too few", []string{"pair", "a"},
			1, "Error: \"ctl pair\" requires exactly 2 argument(s) (SERVICE SLOT), got 1\nSee 'ctl pair --help'.\n"},
		{"none accepted", []string{"none", "x"},
			1, "Error: \"ctl none\" accepts no arguments, got [\"x\"]\nSee 'ctl none --help'.\n"},
		{"at least one missing", []string{"some"},
			1, "Error: \"ctl some\" requires at least one SERVICE argument\nSee 'ctl some --help'.\n"},
		{"unknown flag", []string{"none", "--all"},
			1, "Error: unknown flag: --all\nSee 'ctl none --help'.\n"},
		{"bad format", []string{"none", "--format", "yaml"},
			1, "Error: invalid --format \"yaml\": must be one of table, json\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			root := NewRoot("ctl", "test", "test", &stdout, &stderr)
			ok := func(*cobra.Command, []string) error { return nil }
			none := &cobra.Command{Use: "none", Args: ExactArgs(0, "")}
			_, check := AddFormatFlag(none, FormatTable, FormatJSON)
			none.RunE = func(*cobra.Command, []string) error { return check() }
			root.AddCommand(
				&cobra.Command{Use: "pair", Args: ExactArgs(2, "SERVICE SLOT"), RunE: ok},
				none,
				&cobra.Command{Use: "some", Args: RequireArgs("SERVICE"), RunE: ok},
			)
			code := Execute(context.Background(), root, tt.args, &stderr)
			if code != tt.wantCode || stderr.String() != tt.wantStderr || stdout.Len() != 0 {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d, stderr %q", code, stderr.String(), stdout.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestUsageErrorUnwraps(t *testing.T) {
	inner := errors.New("bad")
	if err := error(&UsageError{Err: inner, CmdPath: "ctl x"}); !errors.Is(err, inner) {
		t.Errorf("%v does not wrap %v", err, inner)
	}
}

func TestPrintTable(t *testing.T) {
	var out bytes.Buffer
	if err := PrintTable(&out, []string{"NAME", "ID", "NOTE"}, [][]string{{"web", "abc", ""}, {"api-long", "d", "x"}}); err != nil {
		t.Fatal(err)
	}
	want := "NAME       ID    NOTE\n" +
		"web        abc\n" +
		"api-long   d     x\n"
	if out.String() != want {
		t.Errorf("table\n%q\nwant\n%q", out.String(), want)
	}
}

func TestFields(t *testing.T) {
	var f Fields
	f.Add("ID", "abc")
	f.Section("Spec")
	f.Add("  Name", "web")
	f.Add("Empty", "")
	var out bytes.Buffer
	if err := f.Write(&out); err != nil {
		t.Fatal(err)
	}
	want := "ID:     abc\n" +
		"Spec:\n" +
		"  Name: web\n" +
		"Empty:\n"
	if out.String() != want {
		t.Errorf("fields\n%q\nwant\n%q", out.String(), want)
	}
}

func TestPrintJSON(t *testing.T) {
	b := &api.IPBinding{Id: "b1", Kind: api.IPBinding_KIND_SLOT, Slot: 3}
	var out bytes.Buffer
	if err := PrintJSONArray(&out, []*api.IPBinding{b}); err != nil {
		t.Fatal(err)
	}
	// Zero values print too: the slot kind is the enum's zero.
	for _, want := range []string{"[\n  {\n", `"id": "b1"`, `"kind": "KIND_SLOT"`, `"slot": "3"`, `"pinned": false`} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("JSON lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := PrintJSONArray(&out, []*api.IPBinding(nil)); err != nil || out.String() != "[]\n" {
		t.Errorf("no bindings printed %q, %v; want []", out.String(), err)
	}
	out.Reset()
	if err := PrintJSONValue(&out, map[string]int{"used": 2}); err != nil || out.String() != "{\n  \"used\": 2\n}\n" {
		t.Errorf("value printed %q, %v", out.String(), err)
	}
}

func TestValues(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{ShortID("0123456789abcdef"), "0123456789ab"},
		{ShortID("short"), "short"},
		{OrDash(""), "-"},
		{OrDash("x"), "x"},
		{AddrOnly("10.20.0.5/24"), "10.20.0.5"},
		{AddrOnly("10.20.0.5"), "10.20.0.5"},
		{FormatVNI(0), "-"},
		{FormatVNI(4097), "4097"},
		{TaskStateName(api.TaskState_TASK_STATE_RUNNING), "running"},
		{BindingState(&api.IPBinding{}), "bound"},
		{BindingState(&api.IPBinding{Pinned: true}), "pinned"},
		{BindingState(&api.IPBinding{Pinned: true, HeldSince: timestamppb.Now(), ReleaseRequested: true}), "held, releasing"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
