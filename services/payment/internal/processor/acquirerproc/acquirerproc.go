// Package acquirerproc is the processor.Processor connector to the simulated acquirer process
// (bourse.acquirer.v1.AcquirerService). It passes each Key through as the acquirer's idempotency key
// and classifies every failure per the processor contract (see classify.go for the NotReached rule).
package acquirerproc

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/bourse-dev/bourse/pkg/client"
	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// Config configures a Client.
type Config struct {
	// Name is the routing name (default "acquirer").
	Name string
	// CallTimeout bounds every call whose context has no earlier deadline (default 10s). Every call
	// has a deadline so that, once it has passed, a Lookup that answers NotFound is final: the
	// acquirer never acts on a call after its deadline.
	CallTimeout time.Duration
}

// Client is a processor.Processor over one gRPC connection to the acquirer. Safe for concurrent use.
type Client struct {
	name    string
	timeout time.Duration
	conn    *grpc.ClientConn
	api     acquirerv1.AcquirerServiceClient
}

var _ processor.Processor = (*Client)(nil)

// Dial connects to target ("consul:///acquirer" or host:port). o carries the resolver, TLS and the
// payment service's key; no retry policy is set (o.Idempotent is ignored): a retry after the request
// was sent is the caller's decision, made with Lookup.
func Dial(target string, o client.Options, cfg Config) (*Client, error) {
	o.Idempotent = nil
	// Reconnect quickly once the acquirer is back: gRPC's default backoff grows to two minutes, during
	// which every call would be NotReached although the acquirer serves again.
	reconnect := grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 2 * time.Second,
		Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}})
	conn, err := client.Dial(target, o, grpc.WithStatsHandler(sentHandler{}), reconnect)
	if err != nil {
		return nil, fmt.Errorf("acquirer: dial %s: %w", target, err)
	}
	if cfg.Name == "" {
		cfg.Name = "acquirer"
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	return &Client{name: cfg.Name, timeout: cfg.CallTimeout, conn: conn, api: acquirerv1.NewAcquirerServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Name is the routing name.
func (c *Client) Name() string { return c.name }

// call runs one acting RPC with a deadline and the tracker the classification needs.
func call[R interface{ GetOperation() *acquirerv1.Operation }](ctx context.Context, c *Client,
	rpc func(context.Context) (R, error)) (processor.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ctx, t := track(ctx)
	resp, err := rpc(ctx)
	if err != nil {
		return classify(err, t.sent.Load())
	}
	return result(resp.GetOperation())
}

func money(m processor.Money) *acquirerv1.Money {
	return &acquirerv1.Money{Amount: m.Amount, Currency: m.Currency}
}

// Authorize asks for an authorization (and capture with req.Capture), keyed by req.Key.
func (c *Client) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Result, error) {
	return call(ctx, c, func(ctx context.Context) (*acquirerv1.AuthorizeResponse, error) {
		return c.api.Authorize(ctx, &acquirerv1.AuthorizeRequest{Key: req.Key, Money: money(req.Money), Method: req.Method,
			PaymentToken: req.PaymentToken, Capture: req.Capture, StatementDescriptor: req.StatementDescr, Metadata: req.Metadata})
	})
}

// Capture captures (part of) the authorization req.AuthorizeKey.
func (c *Client) Capture(ctx context.Context, req processor.CaptureRequest) (processor.Result, error) {
	return call(ctx, c, func(ctx context.Context) (*acquirerv1.CaptureResponse, error) {
		return c.api.Capture(ctx, &acquirerv1.CaptureRequest{Key: req.Key, AuthorizeKey: req.AuthorizeKey, Money: money(req.Money)})
	})
}

// Void cancels the authorization req.AuthorizeKey.
func (c *Client) Void(ctx context.Context, req processor.VoidRequest) (processor.Result, error) {
	return call(ctx, c, func(ctx context.Context) (*acquirerv1.VoidResponse, error) {
		return c.api.Void(ctx, &acquirerv1.VoidRequest{Key: req.Key, AuthorizeKey: req.AuthorizeKey})
	})
}

// Refund returns (part of) what was captured on req.AuthorizeKey.
func (c *Client) Refund(ctx context.Context, req processor.RefundRequest) (processor.Result, error) {
	return call(ctx, c, func(ctx context.Context) (*acquirerv1.RefundResponse, error) {
		return c.api.Refund(ctx, &acquirerv1.RefundRequest{Key: req.Key, AuthorizeKey: req.AuthorizeKey, Money: money(req.Money)})
	})
}

// Payout sends req.Money to req.Destination.
func (c *Client) Payout(ctx context.Context, req processor.PayoutRequest) (processor.Result, error) {
	return call(ctx, c, func(ctx context.Context) (*acquirerv1.PayoutResponse, error) {
		return c.api.Payout(ctx, &acquirerv1.PayoutRequest{Key: req.Key, Money: money(req.Money), Destination: req.Destination,
			Metadata: req.Metadata})
	})
}

var kinds = map[processor.Operation]acquirerv1.OperationKind{
	processor.OpAuthorize: acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE,
	processor.OpCapture:   acquirerv1.OperationKind_OPERATION_KIND_CAPTURE,
	processor.OpVoid:      acquirerv1.OperationKind_OPERATION_KIND_VOID,
	processor.OpRefund:    acquirerv1.OperationKind_OPERATION_KIND_REFUND,
	processor.OpPayout:    acquirerv1.OperationKind_OPERATION_KIND_PAYOUT,
}

// Lookup asks what the acquirer did with key for op: Approved or Declined as first answered, NotFound
// if it never acted on it, Unknown if it could not be asked (down, slow, any error).
func (c *Client) Lookup(ctx context.Context, op processor.Operation, key string) (processor.Result, error) {
	kind, ok := kinds[op]
	if !ok {
		return processor.Result{}, fmt.Errorf("acquirer: lookup of unknown operation %q", op)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.api.Lookup(ctx, &acquirerv1.LookupRequest{Kind: kind, Key: key})
	if err != nil {
		return processor.Result{Status: processor.Unknown, Message: "lookup failed: " + err.Error()}, nil
	}
	if !resp.GetFound() {
		return processor.Result{Status: processor.NotFound, Message: "the acquirer never acted on this key"}, nil
	}
	res, err := result(resp.GetOperation())
	if err != nil {
		return processor.Result{Status: processor.Unknown, Message: err.Error()}, nil
	}
	return res, nil
}

// result maps an operation the acquirer answered; one it answered without an outcome is outside its
// API, so Unknown with an error.
func result(op *acquirerv1.Operation) (processor.Result, error) {
	res := processor.Result{ProcessorRef: op.GetRef(), DeclineCode: op.GetDeclineCode(), Message: op.GetMessage(),
		Money: processor.Money{Amount: op.GetMoney().GetAmount(), Currency: op.GetMoney().GetCurrency()}}
	if at := op.GetActedAt(); at != nil {
		res.At = at.AsTime()
	}
	switch op.GetOutcome() {
	case acquirerv1.Outcome_OUTCOME_APPROVED:
		res.Status = processor.Approved
	case acquirerv1.Outcome_OUTCOME_DECLINED:
		res.Status = processor.Declined
	default:
		return processor.Result{Status: processor.Unknown, ProcessorRef: op.GetRef(), Message: "answer without an outcome"},
			fmt.Errorf("acquirer: answer without an outcome (%v)", op.GetOutcome())
	}
	return res, nil
}
