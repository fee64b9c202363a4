package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"
)

// jaegerSpan is a span as Jaeger's query API returns it (times in microseconds).
type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	StartTime     int64  `json:"startTime"`
	Duration      int64  `json:"duration"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`

	service string
	depth   int
}

type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

func (s jaegerSpan) tag(key string) (any, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

// status is "ok", or "error" with the gRPC code when the span says so.
func (s jaegerSpan) status() string {
	code, hasCode := s.tag("rpc.grpc.status_code")
	if v, ok := s.tag("otel.status_code"); ok && v == "ERROR" {
		if hasCode {
			return fmt.Sprintf("error (code %v)", code)
		}
		return "error"
	}
	if v, ok := s.tag("error"); ok && v == true {
		return "error"
	}
	return "ok"
}

func (s jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (g *globals) jaegerGet(ctx context.Context, path string, q url.Values) ([]jaegerTrace, error) {
	u := strings.TrimRight(g.jaeger, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, usageError("--jaeger %q: %v", g.jaeger, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, &exitError{ExitUnreachable, fmt.Sprintf("Jaeger is unreachable at %s: %v (is make run up? --jaeger)", g.jaeger, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &exitError{ExitUnreachable, fmt.Sprintf("Jaeger at %s: %v", g.jaeger, err)}
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, &exitError{ExitNotFound, "not found in Jaeger (it may not have arrived yet, or is older than Jaeger keeps)"}
	case resp.StatusCode == http.StatusBadRequest:
		return nil, &exitError{ExitUsage, fmt.Sprintf("Jaeger refused the query: %s", strings.TrimSpace(string(body)))}
	case resp.StatusCode != http.StatusOK:
		return nil, &exitError{ExitFailed, fmt.Sprintf("Jaeger answered %s", resp.Status)}
	}
	var out struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, &exitError{ExitFailed, fmt.Sprintf("Jaeger's answer is not what its query API returns: %v", err)}
	}
	for i := range out.Data {
		tr := &out.Data[i]
		for j := range tr.Spans {
			tr.Spans[j].service = tr.Processes[tr.Spans[j].ProcessID].ServiceName
		}
	}
	return out.Data, nil
}

func newTraceCmd(g *globals) *cobra.Command {
	var width int
	cmd := &cobra.Command{
		Use:   "trace TRACE_ID",
		Short: "Draw one trace as a waterfall: service, span, duration, status and when it ran",
		Example: `  bourse trace 4bf92f3577b34da6a3ce929d0e0e4736
  bourse trace 4bf92f3577b34da6a3ce929d0e0e4736 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			traces, err := g.jaegerGet(ctx, "/api/traces/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			if len(traces) == 0 || len(traces[0].Spans) == 0 {
				return &exitError{ExitNotFound, "trace " + args[0] + " has no spans in Jaeger"}
			}
			spans := waterfallOrder(traces[0].Spans)
			if g.output != "table" {
				return g.printAny(spanRecords(spans))
			}
			fmt.Fprint(g.out, waterfall(spans, width))
			return nil
		},
	}
	cmd.Flags().IntVar(&width, "width", 40, "columns of the timeline")
	return cmd
}

func newTracesCmd(g *globals) *cobra.Command {
	var service, operation string
	var last time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "traces --service NAME",
		Short: "Recent traces of a service: id, root span, spans, services, duration, errors",
		Example: `  bourse traces --service matching --last 10m
  bourse traces --service payment --operation bourse.payment.v1.PaymentService/CreatePayment --limit 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if service == "" {
				return usageError("--service is required (one of the services in `bourse status`)")
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			q := url.Values{"service": {service}, "lookback": {last.String()}, "limit": {fmt.Sprint(limit)},
				"start": {fmt.Sprint(time.Now().Add(-last).UnixMicro())}, "end": {fmt.Sprint(time.Now().UnixMicro())}}
			if operation != "" {
				q.Set("operation", operation)
			}
			traces, err := g.jaegerGet(ctx, "/api/traces", q)
			if err != nil {
				return err
			}
			type summary struct {
				id, root, services, started string
				spans, errors               int
				duration                    time.Duration
				start                       int64
			}
			var rows []summary
			for _, tr := range traces {
				if len(tr.Spans) == 0 {
					continue
				}
				spans := waterfallOrder(tr.Spans)
				s := summary{id: tr.TraceID, root: spans[0].service + " " + spans[0].OperationName, spans: len(spans), start: spans[0].StartTime}
				first, end := spans[0].StartTime, int64(0)
				var services []string
				for _, sp := range spans {
					first = min(first, sp.StartTime)
					end = max(end, sp.StartTime+sp.Duration)
					if !slices.Contains(services, sp.service) {
						services = append(services, sp.service)
					}
					if sp.status() != "ok" {
						s.errors++
					}
				}
				s.duration = time.Duration(end-first) * time.Microsecond
				s.services = strings.Join(services, ",")
				s.started = time.UnixMicro(first).Local().Format("15:04:05.000")
				rows = append(rows, s)
			}
			slices.SortFunc(rows, func(a, b summary) int { return int(b.start - a.start) })
			if g.output != "table" {
				var list []any
				for _, r := range rows {
					list = append(list, map[string]any{"trace_id": r.id, "root": r.root, "spans": r.spans, "services": r.services,
						"duration_us": r.duration.Microseconds(), "errors": r.errors, "started": r.started})
				}
				return g.printAny(map[string]any{"traces": list})
			}
			t := newTable(g.out)
			row(t, "TRACE", "STARTED", "ROOT", "SPANS", "SERVICES", "DURATION", "ERRORS")
			for _, r := range rows {
				row(t, r.id, r.started, r.root, r.spans, r.services, r.duration.Round(time.Microsecond), r.errors)
			}
			if err := t.Flush(); err != nil {
				return err
			}
			if len(rows) == 0 {
				fmt.Fprintf(g.errOut, "no traces of %s in the last %s\n", service, last)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "service whose traces to list")
	cmd.Flags().StringVar(&operation, "operation", "", "only traces with this span name")
	cmd.Flags().DurationVar(&last, "last", 10*time.Minute, "how far back to look")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many traces")
	return cmd
}

// waterfallOrder puts each span after its parent (children by start time), root first, and sets
// its depth; spans whose parent is missing count as roots.
func waterfallOrder(spans []jaegerSpan) []jaegerSpan {
	byID := map[string]bool{}
	for _, s := range spans {
		byID[s.SpanID] = true
	}
	children := map[string][]jaegerSpan{}
	var roots []jaegerSpan
	for _, s := range spans {
		if p := s.parent(); p != "" && byID[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b jaegerSpan) int { return int(a.StartTime - b.StartTime) }
	slices.SortFunc(roots, byStart)
	var out []jaegerSpan
	var visit func(s jaegerSpan, depth int)
	visit = func(s jaegerSpan, depth int) {
		s.depth = depth
		out = append(out, s)
		kids := children[s.SpanID]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			visit(k, depth+1)
		}
	}
	for _, r := range roots {
		visit(r, 0)
	}
	return out
}

// waterfall renders spans (in waterfallOrder) with a timeline of width columns.
func waterfall(spans []jaegerSpan, width int) string {
	width = max(width, 10)
	start, end := spans[0].StartTime, int64(0)
	for _, s := range spans {
		start = min(start, s.StartTime)
		end = max(end, s.StartTime+s.Duration)
	}
	total := max(end-start, 1)
	var b strings.Builder
	t := newTable(&b)
	row(t, "SERVICE", "SPAN", "OFFSET", "DURATION", "STATUS", "TIMELINE")
	for _, s := range spans {
		from := int((s.StartTime - start) * int64(width) / total)
		n := max(1, int(s.Duration*int64(width)/total))
		from = min(from, width-1)
		n = min(n, width-from)
		bar := strings.Repeat(" ", from) + strings.Repeat("█", n) + strings.Repeat(" ", width-from-n)
		row(t, s.service, strings.Repeat("  ", s.depth)+s.OperationName,
			time.Duration(s.StartTime-start)*time.Microsecond, time.Duration(s.Duration)*time.Microsecond, s.status(), "|"+bar+"|")
	}
	t.Flush()
	fmt.Fprintf(&b, "%d spans, %s\n", len(spans), time.Duration(total)*time.Microsecond)
	return b.String()
}

func spanRecords(spans []jaegerSpan) map[string]any {
	var list []any
	for _, s := range spans {
		list = append(list, map[string]any{"service": s.service, "span": s.OperationName, "span_id": s.SpanID, "parent": s.parent(),
			"depth": s.depth, "start_us": s.StartTime, "duration_us": s.Duration, "status": s.status()})
	}
	return map[string]any{"spans": list}
}

// printAny prints a JSON-shaped value as JSON or YAML.
func (g *globals) printAny(v map[string]any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		return err
	}
	msg, err := structpb.NewStruct(generic)
	if err != nil {
		return err
	}
	return g.print(msg, func(*tabwriterAlias) {})
}
