package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
)

// interceptors holds what every call passes through, outermost first: metrics and logging see the
// final code; errors become statuses once; auth sets the identity; recovery turns panics into errors.
type interceptors struct {
	log     *slog.Logger
	keys    *auth.Keyring
	policy  auth.Policy
	metrics *rpcMetrics
}

func (ic *interceptors) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	defer func() { ic.observe(ctx, info.FullMethod, start, err) }()
	ctx, err = ic.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, ToStatus(err)
	}
	defer ic.recover(info.FullMethod, &err)
	resp, err = handler(ctx, req)
	return resp, ToStatus(err)
}

func (ic *interceptors) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	defer func() { ic.observe(ss.Context(), info.FullMethod, start, err) }()
	ctx, err := ic.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return ToStatus(err)
	}
	defer ic.recover(info.FullMethod, &err)
	return ToStatus(handler(srv, &identityStream{ServerStream: ss, ctx: ctx}))
}

func (ic *interceptors) authenticate(ctx context.Context, method string) (context.Context, error) {
	id, err := ic.keys.Authorize(ic.policy, method, apiKey(ctx))
	if err != nil {
		return ctx, err
	}
	if id.Role != 0 {
		ctx = auth.WithIdentity(ctx, id)
	}
	return ctx, nil
}

func (ic *interceptors) recover(method string, err *error) {
	if p := recover(); p != nil {
		ic.log.Error("panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = ToStatus(errs.New(errs.KindInternal, "panic"))
	}
}

func (ic *interceptors) observe(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	elapsed := time.Since(start)
	ic.metrics.observe(method, code, elapsed)
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelInfo
	}
	if ic.log.Enabled(ctx, level) {
		attrs := []slog.Attr{slog.String("method", method), slog.String("code", code.String()), slog.Duration("elapsed", elapsed)}
		if err != nil {
			attrs = append(attrs, slog.String("err", status.Convert(err).Message()))
		}
		if id, ok := auth.FromContext(ctx); ok {
			attrs = append(attrs, slog.String("caller", id.Subject))
		}
		ic.log.LogAttrs(ctx, level, "rpc", attrs...)
	}
}

// apiKey reads "authorization: Bearer <key>" or "x-api-key: <key>".
func apiKey(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		if key, ok := strings.CutPrefix(v[0], "Bearer "); ok {
			return strings.TrimSpace(key)
		}
	}
	if v := md.Get("x-api-key"); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }
