package main

// This file owns printing shared by every command: the --format values,
// tables in docker's column style, JSON (protojson for api objects,
// encoding/json for netctl's own rows), aligned key/value summaries, and
// how IDs, times and counts read.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Output formats a --format flag may name: listings print a table or JSON,
// summaries a pretty form or JSON.
const (
	formatTable  = "table"
	formatJSON   = "json"
	formatPretty = "pretty"
)

// addFormatFlag registers --format with the values allowed, the first the
// default, and returns a check to run before anything is asked.
func addFormatFlag(cmd *cobra.Command, allowed ...string) (format *string, check func() error) {
	format = cmd.Flags().String("format", allowed[0], "output format: "+strings.Join(allowed, " or "))
	return format, func() error {
		if slices.Contains(allowed, *format) {
			return nil
		}
		return fmt.Errorf("invalid --format %q: must be one of %s", *format, strings.Join(allowed, ", "))
	}
}

// jsonOptions prints every field, also zero ones: slot kind and zero
// counts are enum and number zero values and would vanish otherwise.
var jsonOptions = protojson.MarshalOptions{EmitUnpopulated: true}

// protoJSON is m as JSON, for embedding in netctl's own JSON objects.
func protoJSON(m proto.Message) (json.RawMessage, error) {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return raw, nil
}

// printJSONArray writes msgs as one indented JSON array.
func printJSONArray[M proto.Message](w io.Writer, msgs []M) error {
	raws := make([]json.RawMessage, 0, len(msgs))
	for _, m := range msgs {
		raw, err := protoJSON(m)
		if err != nil {
			return err
		}
		raws = append(raws, raw)
	}
	return printJSONValue(w, raws)
}

// printJSONValue writes v as indented JSON followed by a newline. Indenting
// with encoding/json also makes protojson's output stable: it varies its
// whitespace on purpose.
func printJSONValue(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return fmt.Errorf("indent JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// printTable writes a header and rows as space-aligned columns.
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
	// An empty last column leaves padding behind.
	var out bytes.Buffer
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}

// field is one "Key: value" line of a summary; a key may start with
// spaces to nest it, and an empty value makes it a heading.
type field struct{ key, value string }

// printFields writes a summary with the values aligned.
func printFields(w io.Writer, fields []field) error {
	width := 0
	for _, f := range fields {
		if f.value != "" {
			width = max(width, len(f.key)+1)
		}
	}
	var buf bytes.Buffer
	for _, f := range fields {
		if f.value == "" {
			fmt.Fprintf(&buf, "%s:\n", f.key)
			continue
		}
		fmt.Fprintf(&buf, "%-*s %s\n", width, f.key+":", f.value)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// shortIDLen is how much of an ID tables show, as shoalctl does.
const shortIDLen = 12

func shortID(id string) string {
	if len(id) <= shortIDLen {
		return id
	}
	return id[:shortIDLen]
}

// now is the clock ages are measured against; tests fix it.
var now = time.Now

// formatSince prints a time and how long ago it was:
// "2025-03-01T12:00:00Z (1h0m0s ago)"; "-" for the zero time.
func formatSince(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t = t.UTC()
	ago := now().Sub(t).Round(time.Second)
	if ago < 0 {
		return t.Format(time.RFC3339) + " (in " + (-ago).String() + ")"
	}
	return t.Format(time.RFC3339) + " (" + ago.String() + " ago)"
}

// formatCount prints an address count; pool sizes saturate at the largest
// uint64, which only IPv6 subnets reach.
func formatCount(n uint64) string {
	if n == math.MaxUint64 {
		return ">=2^64"
	}
	return strconv.FormatUint(n, 10)
}

// addrOnly drops the prefix length of "10.20.0.5/24".
func addrOnly(cidr string) string {
	addr, _, _ := strings.Cut(cidr, "/")
	return addr
}

// orDash stands in "-" for an empty value in human-readable output.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
