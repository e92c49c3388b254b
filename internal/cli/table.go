package cli

// This file owns human-readable layouts: tables in the docker CLI's column
// style, and summaries of "Key: value" lines with the values aligned.

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// PrintTable writes a header and rows as space-aligned columns, like the
// docker CLI's list commands.
func PrintTable(w io.Writer, header []string, rows [][]string) error {
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

// Fields collects the "Key: value" lines of a human-readable summary and
// writes them with the values aligned. Keys may start with spaces to nest
// them under a section. The zero Fields is empty and ready to use.
type Fields struct {
	lines []fieldLine
}

type fieldLine struct {
	key, value string
	section    bool
}

// Add appends a "key: value" line; an empty value prints as "key:".
func (f *Fields) Add(key, value string) {
	f.lines = append(f.lines, fieldLine{key: key, value: value})
}

// Section appends a "name:" line heading the indented lines after it.
func (f *Fields) Section(name string) {
	f.lines = append(f.lines, fieldLine{key: name, section: true})
}

// Write writes the lines, the values of all but sections in one column.
func (f *Fields) Write(w io.Writer) error {
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
