package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/money"
)

// moneyArg reads "AMOUNT CURRENCY" (major units, e.g. 100.50 USD) into minor units.
func moneyArg(amount, currency string) (*paymentv1.Money, error) {
	currency = strings.ToUpper(currency)
	units, err := money.MinorUnits("AMOUNT", amount, currency)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if units <= 0 {
		return nil, usageError("AMOUNT %q: must be more than zero", amount)
	}
	return &paymentv1.Money{Amount: units, Currency: currency}, nil
}

func showMoney(m *paymentv1.Money) string {
	if m == nil || m.GetCurrency() == "" {
		return ""
	}
	return money.FormatMinor(m.GetAmount(), m.GetCurrency()) + " " + m.GetCurrency()
}

// idempotencyKey is the key a creating command sends: the flag, or a new random one (printed, so a
// script can retry with it).
func idempotencyKey(flag, prefix string) string {
	if flag != "" {
		return flag
	}
	return prefix + "-" + strings.TrimPrefix(newClientOrderID(), "cli-")
}

func paymentTable(t *tabwriter.Writer, ps ...*paymentv1.Payment) {
	row(t, "PAYMENT", "ACCOUNT", "AMOUNT", "METHOD", "STATUS", "CAPTURED", "REFUNDED", "FRAUD", "DECLINE", "CREATED")
	for _, p := range ps {
		decline := ""
		if p.GetDeclineReason() != 0 {
			decline = enumName(p.GetDeclineReason(), "DECLINE_REASON_")
		}
		row(t, p.GetPaymentId(), p.GetAccountId(), showMoney(p.GetAmount()), enumName(p.GetMethod(), "PAYMENT_METHOD_"),
			enumName(p.GetStatus(), "PAYMENT_STATUS_"), showMoney(p.GetAmountCaptured()), showMoney(p.GetAmountRefunded()),
			fmt.Sprintf("%.3f", p.GetFraudScore()), decline, p.GetCreatedAt().AsTime().Local().Format(time.DateTime))
	}
}

func newDepositCmd(g *globals) *cobra.Command {
	var account, method, token, key string
	var manual, noWait bool
	cmd := &cobra.Command{
		Use:   "deposit AMOUNT CURRENCY --account ACCOUNT",
		Short: "Pay money into a trading account (fraud-checked; buying power in risk once it succeeds)",
		Example: `  bourse deposit 1000 USD --account alice --token tok_visa
  bourse deposit 250.50 EUR --account alice --method bank_transfer --token ba_test
  bourse deposit 1000 USD --account alice --idempotency-key dep-2026-12-01-1   # safe to repeat`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := moneyArg(args[0], args[1])
			if err != nil {
				return err
			}
			if account == "" {
				return usageError("--account is required (or set BOURSE_ACCOUNT)")
			}
			m, ok := paymentv1.PaymentMethod_value["PAYMENT_METHOD_"+strings.ToUpper(method)]
			if !ok || m == 0 {
				return usageError("--method %q: want card or bank_transfer", method)
			}
			capture := paymentv1.CaptureMethod_CAPTURE_METHOD_AUTOMATIC
			if manual {
				capture = paymentv1.CaptureMethod_CAPTURE_METHOD_MANUAL
			}
			key = idempotencyKey(key, "dep")
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.CreatePaymentResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).CreatePayment(ctx, &paymentv1.CreatePaymentRequest{AccountId: account, Amount: amount,
					Method: paymentv1.PaymentMethod(m), PaymentToken: token, CaptureMethod: capture, IdempotencyKey: key})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "idempotency key %s%s\n", key, map[bool]string{true: " (replayed: the first answer to this key)"}[resp.GetReplayed()])
			p := resp.GetPayment()
			if !noWait && p.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED && !p.GetRiskCredited() {
				// The credit reaches risk from payment's outbox just after the answer: wait for it, so
				// the money can be traded with when the command returns.
				credited, err := g.waitRiskCredit(ctx, p.GetPaymentId())
				if err != nil {
					return err
				}
				resp.Payment = credited
			}
			if err := g.print(resp, func(t *tabwriter.Writer) { paymentTable(t, resp.GetPayment()) }); err != nil {
				return err
			}
			return paymentOutcome(resp.GetPayment())
		},
	}
	f := cmd.Flags()
	f.StringVar(&account, "account", os.Getenv("BOURSE_ACCOUNT"), "trading account to credit (default $BOURSE_ACCOUNT)")
	f.StringVar(&method, "method", "card", "card or bank_transfer")
	f.StringVar(&token, "token", "tok_visa", "payment token from the processor (never card data)")
	f.StringVar(&key, "idempotency-key", "", "makes a retry safe: the same key answers the first result (default: a new one, printed)")
	f.BoolVar(&manual, "manual-capture", false, "authorize only; capture later")
	f.BoolVar(&noWait, "no-wait", false, "return when the payment succeeds, before risk has the credit")
	return cmd
}

// paymentOutcome makes a declined or failed payment a failing exit for scripts.
func paymentOutcome(p *paymentv1.Payment) error {
	switch p.GetStatus() {
	case paymentv1.PaymentStatus_PAYMENT_STATUS_FAILED, paymentv1.PaymentStatus_PAYMENT_STATUS_CANCELED:
		reason := enumName(p.GetDeclineReason(), "DECLINE_REASON_")
		if p.GetDeclineCode() != "" {
			reason += " (" + p.GetDeclineCode() + ")"
		}
		return &exitError{ExitFailed, fmt.Sprintf("payment %s %s: %s", p.GetPaymentId(), enumName(p.GetStatus(), "PAYMENT_STATUS_"), reason)}
	}
	return nil
}

func newWithdrawCmd(g *globals) *cobra.Command {
	var account, destination, key string
	cmd := &cobra.Command{
		Use:   "withdraw AMOUNT CURRENCY --account ACCOUNT --destination BANK_TOKEN",
		Short: "Pay money out of a trading account (taken from risk first, given back if the payout fails)",
		Example: `  bourse withdraw 200 USD --account alice --destination ba_alice
  bourse withdraw 200 USD --account alice --destination ba_alice --idempotency-key wd-7 -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := moneyArg(args[0], args[1])
			if err != nil {
				return err
			}
			if account == "" || destination == "" {
				return usageError("--account and --destination are required")
			}
			key = idempotencyKey(key, "wd")
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.CreatePayoutResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).CreatePayout(ctx, &paymentv1.CreatePayoutRequest{AccountId: account, Amount: amount,
					Destination: destination, IdempotencyKey: key})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "idempotency key %s\n", key)
			p := resp.GetPayout()
			if err := g.print(resp, func(t *tabwriter.Writer) {
				row(t, "PAYOUT", "ACCOUNT", "AMOUNT", "DESTINATION", "STATUS", "DECLINE")
				row(t, p.GetPayoutId(), p.GetAccountId(), showMoney(p.GetAmount()), p.GetDestination(), enumName(p.GetStatus(), "PAYOUT_STATUS_"), p.GetDeclineCode())
			}); err != nil {
				return err
			}
			// REVERSING is refused too: the processor said no and the debit is on its way back.
			switch p.GetStatus() {
			case paymentv1.PayoutStatus_PAYOUT_STATUS_FAILED, paymentv1.PayoutStatus_PAYOUT_STATUS_REVERSING:
				return &exitError{ExitFailed, fmt.Sprintf("payout %s %s: %s", p.GetPayoutId(), enumName(p.GetStatus(), "PAYOUT_STATUS_"),
					enumName(p.GetDeclineReason(), "DECLINE_REASON_"))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&account, "account", os.Getenv("BOURSE_ACCOUNT"), "trading account to debit (default $BOURSE_ACCOUNT)")
	f.StringVar(&destination, "destination", "", "bank account token to pay to")
	f.StringVar(&key, "idempotency-key", "", "makes a retry safe (default: a new one, printed)")
	return cmd
}

func newPaymentsCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{Use: "payments", Short: "Deposits: list, show, refund"})
	var account, statusName string
	var since time.Duration
	var limit int32
	list := &cobra.Command{
		Use:     "list",
		Short:   "Payments, newest first (filters: account, status, since)",
		Example: "  bourse payments list --account alice\n  bourse payments list --account alice --status succeeded --since 24h -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &paymentv1.ListPaymentsRequest{AccountId: account, PageSize: limit}
			if statusName != "" {
				v, ok := paymentv1.PaymentStatus_value["PAYMENT_STATUS_"+strings.ToUpper(statusName)]
				if !ok || v == 0 {
					return usageError("--status %q: want requires_capture, processing, succeeded, failed, canceled, refunded, ...", statusName)
				}
				req.Status = paymentv1.PaymentStatus(v)
			}
			if since > 0 {
				req.CreatedAfter = timestamppb.New(time.Now().Add(-since))
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.ListPaymentsResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).ListPayments(ctx, req)
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) { paymentTable(t, resp.GetPayments()...) })
		},
	}
	list.Flags().StringVar(&account, "account", os.Getenv("BOURSE_ACCOUNT"), "only this account's (default $BOURSE_ACCOUNT)")
	list.Flags().StringVar(&statusName, "status", "", "only payments in this status")
	list.Flags().DurationVar(&since, "since", 0, "only payments created in this last while (e.g. 24h)")
	list.Flags().Int32Var(&limit, "limit", 20, "at most this many")

	get := &cobra.Command{
		Use:     "get PAYMENT_ID",
		Short:   "A payment with its attempts at the processors",
		Example: "  bourse payments get pay_01HF...\n  bourse payments get pay_01HF... -o yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.GetPaymentResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: args[0]})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) {
				paymentTable(t, resp.GetPayment())
				fmt.Fprintln(t)
				row(t, "ATTEMPT", "PROCESSOR", "STATUS", "PROCESSOR REF", "DECLINE CODE")
				for _, a := range resp.GetPayment().GetAttempts() {
					row(t, a.GetAttemptId(), a.GetProcessor(), enumName(a.GetStatus(), "ATTEMPT_STATUS_"), a.GetProcessorRef(), a.GetDeclineCode())
				}
			})
		},
	}

	var refundKey, reason string
	refund := &cobra.Command{
		Use:     "refund PAYMENT_ID [AMOUNT]",
		Short:   "Refund a payment, all of what is left or AMOUNT (major units, the payment's currency)",
		Example: "  bourse payments refund pay_01HF...\n  bourse payments refund pay_01HF... 25.00 --reason requested_by_customer",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			units, err := paymentUnits(ctx, g, args)
			if err != nil {
				return err
			}
			key := idempotencyKey(refundKey, "ref")
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.RefundPaymentResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).RefundPayment(ctx, &paymentv1.RefundPaymentRequest{PaymentId: args[0], Amount: units,
					Reason: reason, IdempotencyKey: key})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "idempotency key %s\n", key)
			r := resp.GetRefund()
			if err := g.print(resp, func(t *tabwriter.Writer) {
				row(t, "REFUND", "PAYMENT", "AMOUNT", "STATUS", "PAYMENT STATUS", "REFUNDED IN ALL")
				row(t, r.GetRefundId(), r.GetPaymentId(), showMoney(r.GetAmount()), enumName(r.GetStatus(), "REFUND_STATUS_"),
					enumName(resp.GetPayment().GetStatus(), "PAYMENT_STATUS_"), showMoney(resp.GetPayment().GetAmountRefunded()))
			}); err != nil {
				return err
			}
			// A refund risk or the processor refused gives nothing back (REVERSING is the processor's
			// no, its debit on the way back): a script must not read it as done.
			switch r.GetStatus() {
			case paymentv1.RefundStatus_REFUND_STATUS_FAILED, paymentv1.RefundStatus_REFUND_STATUS_REVERSING:
				reason := r.GetDeclineCode()
				if reason == "" {
					reason = "refused"
				}
				return &exitError{ExitFailed, fmt.Sprintf("refund %s %s: %s", r.GetRefundId(), enumName(r.GetStatus(), "REFUND_STATUS_"), reason)}
			}
			return nil
		},
	}
	refund.Flags().StringVar(&refundKey, "idempotency-key", "", "makes a retry safe (default: a new one, printed)")
	refund.Flags().StringVar(&reason, "reason", "", "why (kept with the refund)")
	var captureKey, cancelKey string
	capture := &cobra.Command{
		Use:     "capture PAYMENT_ID [AMOUNT]",
		Short:   "Capture a payment authorized with --manual-capture: all of it, or AMOUNT (major units)",
		Example: "  bourse payments capture pay_01HF...\n  bourse payments capture pay_01HF... 30.00",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			units, err := paymentUnits(ctx, g, args)
			if err != nil {
				return err
			}
			key := idempotencyKey(captureKey, "cap")
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.CapturePaymentResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).CapturePayment(ctx, &paymentv1.CapturePaymentRequest{PaymentId: args[0],
					AmountToCapture: units, IdempotencyKey: key})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "idempotency key %s\n", key)
			if err := g.print(resp, func(t *tabwriter.Writer) { paymentTable(t, resp.GetPayment()) }); err != nil {
				return err
			}
			return paymentOutcome(resp.GetPayment())
		},
	}
	capture.Flags().StringVar(&captureKey, "idempotency-key", "", "makes a retry safe (default: a new one, printed)")
	cancelCmd := &cobra.Command{
		Use:     "cancel PAYMENT_ID",
		Short:   "Cancel a payment that is authorized but not captured (the hold is released)",
		Example: "  bourse payments cancel pay_01HF...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			key := idempotencyKey(cancelKey, "can")
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.CancelPaymentResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).CancelPayment(ctx, &paymentv1.CancelPaymentRequest{PaymentId: args[0], IdempotencyKey: key})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "idempotency key %s\n", key)
			return g.print(resp, func(t *tabwriter.Writer) { paymentTable(t, resp.GetPayment()) })
		},
	}
	cancelCmd.Flags().StringVar(&cancelKey, "idempotency-key", "", "makes a retry safe (default: a new one, printed)")
	cmd.AddCommand(list, get, refund, capture, cancelCmd)
	return cmd
}

func newWebhooksCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{Use: "webhooks", Short: "Webhook endpoints: where payment events are delivered, signed"})
	var account, whKey string
	var events []string
	create := &cobra.Command{
		Use:   "create URL --account ACCOUNT",
		Short: "Add an endpoint; its signing secret is shown once, now",
		Example: `  bourse webhooks create https://example.test/hooks --account alice
  bourse webhooks create http://127.0.0.1:8099/hook --account alice --events payment.succeeded,payout.failed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := idempotencyKey(whKey, "wh")
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.CreateWebhookEndpointResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).CreateWebhookEndpoint(ctx, &paymentv1.CreateWebhookEndpointRequest{AccountId: account,
					Url: args[0], EventTypes: events, IdempotencyKey: key})
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "idempotency key %s\n", key)
			e := resp.GetEndpoint()
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "ENDPOINT", "URL", "EVENTS", "SECRET (shown once)")
				row(t, e.GetEndpointId(), e.GetUrl(), strings.Join(e.GetEventTypes(), ","), resp.GetSecret())
			})
		},
	}
	create.Flags().StringVar(&account, "account", os.Getenv("BOURSE_ACCOUNT"), "whose events (default $BOURSE_ACCOUNT)")
	create.Flags().StringSliceVar(&events, "events", nil, "event types to deliver (default all)")
	create.Flags().StringVar(&whKey, "idempotency-key", "", "makes a retry safe: the same key answers the first endpoint (default: a new one, printed)")
	list := &cobra.Command{
		Use: "list", Short: "An account's endpoints", Example: "  bourse webhooks list --account alice", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.ListWebhookEndpointsResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).ListWebhookEndpoints(ctx, &paymentv1.ListWebhookEndpointsRequest{AccountId: account})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "ENDPOINT", "URL", "EVENTS", "CREATED")
				for _, e := range resp.GetEndpoints() {
					row(t, e.GetEndpointId(), e.GetUrl(), strings.Join(e.GetEventTypes(), ","), e.GetCreatedAt().AsTime().Local().Format(time.DateTime))
				}
			})
		},
	}
	list.Flags().StringVar(&account, "account", os.Getenv("BOURSE_ACCOUNT"), "whose endpoints (default $BOURSE_ACCOUNT)")
	del := &cobra.Command{
		Use: "delete ENDPOINT_ID", Short: "Stop delivering to an endpoint", Example: "  bourse webhooks delete we_01HF...", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			if _, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.DeleteWebhookEndpointResponse, error) {
				return paymentv1.NewPaymentServiceClient(cc).DeleteWebhookEndpoint(ctx, &paymentv1.DeleteWebhookEndpointRequest{EndpointId: args[0]})
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "deleted %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

// waitRiskCredit polls the payment until risk has its credit, within the call's deadline.
func (g *globals) waitRiskCredit(ctx context.Context, id string) (*paymentv1.Payment, error) {
	for {
		resp, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.GetPaymentResponse, error) {
			return paymentv1.NewPaymentServiceClient(cc).GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: id})
		})
		if err != nil {
			return nil, err
		}
		if resp.GetPayment().GetRiskCredited() {
			return resp.GetPayment(), nil
		}
		select {
		case <-ctx.Done():
			return nil, &exitError{ExitFailed, fmt.Sprintf("payment %s succeeded but risk has not had its credit within --timeout; it will (the outbox retries): bourse payments get %s", id, id)}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// paymentUnits reads the optional AMOUNT argument (args[1], major units) in the currency of the
// payment args[0] names; 0 when it is absent (the whole of what is left).
func paymentUnits(ctx context.Context, g *globals, args []string) (int64, error) {
	if len(args) < 2 {
		return 0, nil
	}
	got, err := call(g, "payment", func(cc *grpc.ClientConn) (*paymentv1.GetPaymentResponse, error) {
		return paymentv1.NewPaymentServiceClient(cc).GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: args[0]})
	})
	if err != nil {
		return 0, err
	}
	m, err := moneyArg(args[1], got.GetPayment().GetAmount().GetCurrency())
	if err != nil {
		return 0, err
	}
	return m.GetAmount(), nil
}
