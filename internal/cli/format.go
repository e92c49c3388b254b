package cli

// This file owns the --format flag: the values it may take and the check
// that refuses any other before anything is asked of the manager.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// Output formats a --format flag may name: listings print a table or JSON,
// summaries a pretty form or JSON.
const (
	FormatTable  = "table"
	FormatJSON   = "json"
	FormatPretty = "pretty"
)

// CheckFormat returns an error naming flag and the allowed values when
// value is not one of them.
func CheckFormat(flag, value string, allowed ...string) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	return fmt.Errorf("invalid --%s %q: must be one of %s", flag, value, strings.Join(allowed, ", "))
}

// AddFormatFlag registers --format with the values allowed, the first the
// default, and returns it with the check to run before anything is asked.
func AddFormatFlag(cmd *cobra.Command, allowed ...string) (format *string, check func() error) {
	format = cmd.Flags().String("format", allowed[0], "output format: "+strings.Join(allowed, " or "))
	return format, func() error { return CheckFormat("format", *format, allowed...) }
}
