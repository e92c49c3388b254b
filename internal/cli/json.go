package cli

// This file owns JSON output: API objects through protojson, every field
// printed, and a CLI's own values through encoding/json, all indented the
// same way.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonOptions prints every field, also zero ones: a worker's role, a slot
// binding's kind and zero counts are enum and number zero values and would
// vanish otherwise.
var jsonOptions = protojson.MarshalOptions{EmitUnpopulated: true}

// ProtoJSON is m as JSON, for embedding in a CLI's own JSON values.
func ProtoJSON(m proto.Message) (json.RawMessage, error) {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return raw, nil
}

// PrintJSON writes m as indented JSON followed by a newline.
func PrintJSON(w io.Writer, m proto.Message) error {
	raw, err := ProtoJSON(m)
	if err != nil {
		return err
	}
	return writeIndented(w, raw)
}

// PrintJSONArray writes msgs as one indented JSON array followed by a
// newline.
func PrintJSONArray[M proto.Message](w io.Writer, msgs []M) error {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, m := range msgs {
		if i > 0 {
			buf.WriteByte(',')
		}
		raw, err := ProtoJSON(m)
		if err != nil {
			return err
		}
		buf.Write(raw)
	}
	buf.WriteByte(']')
	return writeIndented(w, buf.Bytes())
}

// PrintJSONValue writes v, a CLI's own value, as indented JSON followed by
// a newline.
func PrintJSONValue(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	return writeIndented(w, raw)
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
