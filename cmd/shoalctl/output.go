package main

// This file owns printing shared by every command: tables (docker's
// column style), JSON of API objects, aligned key/value summaries and the
// human names of enums.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Output formats a --format flag may name.
const (
	formatTable  = "table"
	formatJSON   = "json"
	formatPretty = "pretty"
)

// checkFormat returns an error naming flag and the allowed values when value
// is not one of them.
func checkFormat(flag, value string, allowed ...string) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	return fmt.Errorf("invalid --%s %q: must be one of %s", flag, value, strings.Join(allowed, ", "))
}

// jsonOptions prints every field, also zero ones: a worker's role, an active
// node's availability and an unknown state are enum zero values and would
// vanish otherwise.
var jsonOptions = protojson.MarshalOptions{EmitUnpopulated: true}

// printJSON writes m as indented JSON followed by a newline.
func printJSON(w io.Writer, m proto.Message) error {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return writeIndented(w, raw)
}

// printJSONArray writes msgs as one indented JSON array followed by a newline.
func printJSONArray[M proto.Message](w io.Writer, msgs []M) error {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, m := range msgs {
		if i > 0 {
			buf.WriteByte(',')
		}
		raw, err := jsonOptions.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().Name(), err)
		}
		buf.Write(raw)
	}
	buf.WriteByte(']')
	return writeIndented(w, buf.Bytes())
}

// writeIndented re-indents JSON with encoding/json, which also makes the
// output stable: protojson varies its whitespace on purpose.
func writeIndented(w io.Writer, raw []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return fmt.Errorf("indent JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// printTable writes a header and rows as space-aligned columns, like the
// docker CLI's list commands.
func printTable(w io.Writer, header []string, rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// An empty last column (a worker's MANAGER STATUS) leaves padding behind.
	var out bytes.Buffer
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}

// fieldList collects "Key: value" lines of a human-readable summary and
// prints them with the values aligned. Keys may start with spaces to nest
// them under a section.
type fieldList struct {
	lines []fieldLine
}

type fieldLine struct {
	key, value string
	section    bool
}

// add appends a "key: value" line.
func (f *fieldList) add(key, value string) {
	f.lines = append(f.lines, fieldLine{key: key, value: value})
}

// section appends a "name:" line heading the indented lines after it.
func (f *fieldList) section(name string) {
	f.lines = append(f.lines, fieldLine{key: name, section: true})
}

func (f *fieldList) write(w io.Writer) error {
	width := 0
	for _, l := range f.lines {
		if !l.section {
			width = max(width, len(l.key)+1)
		}
	}
	var buf bytes.Buffer
	for _, l := range f.lines {
		if l.section || l.value == "" {
			fmt.Fprintf(&buf, "%s:\n", l.key)
			continue
		}
		fmt.Fprintf(&buf, "%-*s %s\n", width, l.key+":", l.value)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// formatTime prints a timestamp in UTC, or "-" when it is unset.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// formatDuration prints a duration the Go way, adding days when it is a
// whole number of them: "2160h0m0s (90 days)". Unset prints "-".
func formatDuration(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	dur := d.AsDuration()
	const day = 24 * time.Hour
	if dur >= day && dur%day == 0 {
		return fmt.Sprintf("%v (%d days)", dur, dur/day)
	}
	return dur.String()
}

// orDash stands in "-" for an empty value in human-readable output.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// named is an object listed by name: a service or a network.
type named interface {
	proto.Message
	GetId() string
}

// printListing prints what an `ls` lists, sorted by name then ID: the IDs
// with -q, a JSON array with --format json, else the table.
func printListing[T named](w io.Writer, items []T, name func(T) string, quiet bool, format string, table func([]T) error) error {
	slices.SortFunc(items, func(x, y T) int {
		return cmp.Or(cmp.Compare(name(x), name(y)), cmp.Compare(x.GetId(), y.GetId()))
	})
	switch {
	case quiet:
		for _, it := range items {
			fmt.Fprintln(w, shortID(it.GetId(), false))
		}
		return nil
	case format == formatJSON:
		return printJSONArray(w, items)
	}
	return table(items)
}
