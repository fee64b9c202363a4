package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/bourse-dev/bourse/pkg/auth"
)

// tap authenticates, authorises and rate-limits a call from its method name and headers, before
// gRPC reads the request message: a caller without the right key cannot make the server decode (or
// even receive) up to --max-message-bytes. The identity it puts in the stream's context is what
// the interceptors and handlers see.
//
// It runs on the connection's reader goroutine, so it only hashes the key and looks at maps.
func (ic *interceptors) tap(ctx context.Context, info *tap.Info) (_ context.Context, err error) {
	// A panic here would unwind through gRPC's connection reader while it holds the connection:
	// the connection, and the server's shutdown, would wait for it forever.
	defer func() {
		if p := recover(); p != nil {
			ic.log.Error("panic in the auth tap", "panic", p)
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	id, err := ic.keys.Keyring().Authorize(ic.policy, info.FullMethodName, keyFromMD(info.Header))
	if err != nil {
		st := ToStatus(err)
		ic.refused(ctx, info.FullMethodName, st)
		return ctx, st
	}
	if id.Role == 0 {
		return ctx, nil // public method, no (known) key
	}
	if ic.limits != nil && !ic.limits.allow(id) {
		st := status.Errorf(codes.ResourceExhausted, "rate limit for %s exceeded (%s); slow down and retry", id, ic.limits.rates[id.Role])
		ic.refused(auth.WithIdentity(ctx, id), info.FullMethodName, st)
		return ctx, st
	}
	return auth.WithIdentity(ctx, id), nil
}

// refused counts and logs a call the tap turned away; it never reaches the interceptors. Refusals
// log at debug: an unauthenticated flood must not become a log flood (the metrics count them).
func (ic *interceptors) refused(ctx context.Context, method string, err error) {
	ic.record(ctx, method, time.Now(), err, slog.LevelDebug)
}

// keyFromMD reads "authorization: Bearer <key>" or "x-api-key: <key>" from headers without copying
// them (metadata keys are lower case on the server).
func keyFromMD(md metadata.MD) string {
	if v := md["authorization"]; len(v) > 0 {
		if key, ok := strings.CutPrefix(v[0], "Bearer "); ok {
			return strings.TrimSpace(key)
		}
	}
	if v := md["x-api-key"]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}
