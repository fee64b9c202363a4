package auth

import (
	"fmt"
	"strings"

	"google.golang.org/grpc"
)

// Table renders who may call each method of services as a Markdown table, in descriptor order. The
// README's "Security model" is made of these tables, so the documentation cannot drift from the
// policies the servers enforce.
func (p Policy) Table(services ...*grpc.ServiceDesc) string {
	var b strings.Builder
	b.WriteString("| method | who may call |\n|---|---|\n")
	for _, sd := range services {
		names := make([]string, 0, len(sd.Methods)+len(sd.Streams))
		for _, m := range sd.Methods {
			names = append(names, m.MethodName)
		}
		for _, st := range sd.Streams {
			names = append(names, st.StreamName+" (stream)")
		}
		for _, n := range names {
			method := "/" + sd.ServiceName + "/" + strings.TrimSuffix(n, " (stream)")
			who := "**refused: not classified**"
			if a, ok := p.For(method); ok {
				who = a.String()
			}
			fmt.Fprintf(&b, "| `%s.%s` | %s |\n", shortService(sd.ServiceName), n, who)
		}
	}
	return b.String()
}

func shortService(full string) string {
	return full[strings.LastIndex(full, ".")+1:]
}
