package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
)

// interceptors holds what every call passes through. The tap (tap.go) decides who may call before
// the message is read; then, outermost first: metrics and logging see the final code; errors become
// statuses once; recovery turns panics into errors.
type interceptors struct {
	log     *slog.Logger
	keys    *auth.KeySource
	policy  auth.Policy
	limits  *rateLimiter // nil: no rate limits
	metrics *rpcMetrics
}

func (ic *interceptors) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx, err = ic.ensureIdentity(ctx, info.FullMethod)
	defer func() { ic.observe(ctx, info.FullMethod, start, err) }()
	if err != nil {
		return nil, err
	}
	defer ic.recover(info.FullMethod, &err)
	resp, err = handler(ctx, req)
	return resp, ToStatus(err)
}

func (ic *interceptors) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	// The stream's context carries the identity the tap established, so the log line names the caller.
	ctx, err := ic.ensureIdentity(ss.Context(), info.FullMethod)
	defer func() { ic.observe(ctx, info.FullMethod, start, err) }()
	if err != nil {
		return err
	}
	defer ic.recover(info.FullMethod, &err)
	if ctx != ss.Context() {
		ss = &identityStream{ServerStream: ss, ctx: ctx}
	}
	if id, ok := auth.FromContext(ctx); ok {
		ss = &revocableStream{ServerStream: ss, keys: ic.keys, keyring: ic.keys.Keyring(), key: apiKey(ctx), id: id, limits: ic.limits}
	}
	return ToStatus(handler(srv, ss))
}

// ensureIdentity returns ctx as the tap left it. Only a call that did not pass the tap (a transport
// without one) lacks an identity on a non-public method; it is checked here instead, so no path
// skips authorisation.
func (ic *interceptors) ensureIdentity(ctx context.Context, method string) (context.Context, error) {
	if _, ok := auth.FromContext(ctx); ok {
		return ctx, nil
	}
	if a, ok := ic.policy.For(method); ok && a.IsPublic() {
		return ctx, nil
	}
	id, err := ic.keys.Keyring().Authorize(ic.policy, method, apiKey(ctx))
	if err != nil {
		return ctx, ToStatus(err)
	}
	return auth.WithIdentity(ctx, id), nil
}

func (ic *interceptors) recover(method string, err *error) {
	if p := recover(); p != nil {
		ic.log.Error("panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = ToStatus(errs.New(errs.KindInternal, "panic"))
	}
}

func (ic *interceptors) observe(ctx context.Context, method string, start time.Time, err error) {
	ic.record(ctx, method, start, err, slog.LevelInfo)
}

func (ic *interceptors) record(ctx context.Context, method string, start time.Time, err error, errLevel slog.Level) {
	code := status.Code(err)
	elapsed := time.Since(start)
	ic.metrics.observe(method, code, elapsed)
	level := slog.LevelDebug
	if err != nil {
		level = errLevel
	}
	if ic.log.Enabled(ctx, level) {
		attrs := []slog.Attr{slog.String("method", method), slog.String("code", code.String()), slog.Duration("elapsed", elapsed)}
		if err != nil {
			attrs = append(attrs, slog.String("err", status.Convert(err).Message()))
		}
		if id, ok := auth.FromContext(ctx); ok {
			attrs = append(attrs, slog.String("caller", id.String()))
		}
		ic.log.LogAttrs(ctx, level, "rpc", attrs...)
	}
}

// apiKey reads the key from incoming metadata without copying it (metadata.FromIncomingContext
// copies every header; this path is only taken when the tap did not run).
func apiKey(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		if key, ok := strings.CutPrefix(v[0], "Bearer "); ok {
			return strings.TrimSpace(key)
		}
	}
	if v := metadata.ValueFromIncomingContext(ctx, "x-api-key"); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// revocableStream ends a stream whose key is taken out of the keyring while it is open: a key that
// operators rotate out must not keep trading on a stream opened before. The key is looked up again
// only when the keyring changed, so a message costs one pointer comparison. Each message received
// also pays the caller's rate limit (the tap charged only the stream's opening).
type revocableStream struct {
	grpc.ServerStream
	keys    *auth.KeySource
	keyring *auth.Keyring
	key     string
	id      auth.Identity
	limits  *rateLimiter
}

func (s *revocableStream) RecvMsg(m any) error {
	if kr := s.keys.Keyring(); kr != s.keyring {
		if id, ok := kr.Lookup(s.key); !ok || id != s.id {
			return status.Error(codes.Unauthenticated, "the API key of this stream was revoked; reconnect with a current key")
		}
		s.keyring = kr
	}
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.limits != nil {
		if err := s.limits.wait(s.Context(), s.id); err != nil {
			return status.FromContextError(err).Err()
		}
	}
	return nil
}
