package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bourse-dev/bourse/pkg/auth"
)

// take answers how long until the next token once a bucket is empty, and a token again after that.
func TestTakeAnswersTheWaitForTheNextToken(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRateLimiter(map[auth.Role]Rate{auth.RoleAccount: {PerSecond: 10, Burst: 2}}, func() time.Time { return now })
	alice := auth.Account("alice")
	for i := range 2 {
		if d := l.take(alice); d != 0 {
			t.Fatalf("token %d of the burst: wait %v", i+1, d)
		}
	}
	d := l.take(alice)
	if d < 90*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("empty bucket at 10/s: wait %v, want about 100ms", d)
	}
	now = now.Add(d)
	if d := l.take(alice); d != 0 {
		t.Fatalf("after the wait: %v more", d)
	}
	if d := l.take(auth.Account("bob")); d != 0 {
		t.Fatalf("bob pays for alice: %v", d)
	}
}

// A stream's messages pay the caller's rate limit: past its burst the stream slows down to the rate
// (it is not cut off), while the tap only charged its opening.
func TestStreamMessagesPayTheRateLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := runEcho(t, ctx, "--api-keys=al=account:alice", "--rate-limit-account=50/s:5")
	s, err := conn.NewStream(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer al"), &echoDesc.Streams[0], "/test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	const messages = 30
	start := time.Now()
	for i := range messages {
		if err := s.SendMsg(wrapperspb.String("ping")); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := s.RecvMsg(new(wrapperspb.StringValue)); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	// The opening took one of the 5 tokens: 30 messages need 26 more at 50/s, at least 0.52 s.
	if elapsed := time.Since(start); elapsed < 400*time.Millisecond {
		t.Fatalf("%d messages over a 50/s:5 limit took %v: the stream's messages do not pay the limit", messages, elapsed)
	}
}
