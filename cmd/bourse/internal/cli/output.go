package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// marshalJSON renders msg with the field names of the .proto. protojson varies its whitespace
// from build to build on purpose; scripts compare and grep this output, so it is re-encoded into
// one fixed layout: one line, or indented by two spaces.
func marshalJSON(msg proto.Message, indent bool) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if indent {
		err = json.Indent(&out, b, "", "  ")
	} else {
		err = json.Compact(&out, b)
	}
	return out.Bytes(), err
}

// print writes msg in the chosen format: the table when -o table, the message itself otherwise
// (field names as in the .proto, like grpcurl shows them).
// A nil table means a stream's message: JSON is then one line per message.
func (g *globals) print(msg proto.Message, table func(t *tabwriter.Writer)) error {
	switch {
	case g.output == "json" && table == nil:
		b, err := marshalJSON(msg, false)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(g.out, "%s\n", b)
		return err
	case g.output == "json", g.output == "yaml":
		b, err := marshalJSON(msg, true)
		if err != nil {
			return err
		}
		if g.output == "yaml" {
			if b, err = yaml.JSONToYAML(b); err != nil {
				return err
			}
			if table == nil {
				b = append([]byte("---\n"), b...)
			}
			_, err = g.out.Write(b)
			return err
		}
		_, err = fmt.Fprintf(g.out, "%s\n", b)
		return err
	default:
		t := newTable(g.out)
		table(t)
		return t.Flush()
	}
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprint(c)
		if parts[i] == "" {
			parts[i] = "-"
		}
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}

// enumName shortens a proto enum value for a table: SIDE_BUY -> buy.
func enumName(v fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(v.String(), prefix))
}

// tabwriterAlias lets callers that never print a table pass a no-op table function.
type tabwriterAlias = tabwriter.Writer

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }
