package authtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Who is the expected audience of one method, written by hand per service (independently of the
// Policy it checks, so a wrong policy entry fails the test).
type Who struct {
	Public bool
	// Accounts: "" none, "own" (the request names an account and only that account may call), "any".
	Accounts string
	// Services admitted by name; "*" admits every service.
	Services []string
}

var (
	Public    = Who{Public: true}
	Admin     = Who{}
	Own       = Who{Accounts: "own"}
	AnyAcct   = Who{Accounts: "any"}
	AnyCaller = Who{Accounts: "any", Services: []string{"*"}}
)

// Svc admits the named services (and admins).
func Svc(names ...string) Who { return Who{Services: names} }

// Or adds services to w.
func (w Who) Or(names ...string) Who {
	w.Services = append(slices.Clone(w.Services), names...)
	return w
}

// Keys are the callers of a matrix: an account that owns the data the requests name, another
// account, a key per service identity, an admin.
type Keys struct {
	Own, Other string            // keys of account:<OwnAccount> and of another account
	OwnAccount string            // the account id the requests name
	Services   map[string]string // service name -> key
	Admin      string
}

// Matrix calls every method of sd, with each caller of keys and with no key, through conn, and
// checks each answer: a caller the table admits must get past authorisation (any code but
// Unauthenticated and PermissionDenied; requests are minimal, so InvalidArgument or NotFound are
// expected), one it does not must get PermissionDenied, no key Unauthenticated. Every method of sd
// must be in table.
func Matrix(t *testing.T, conn *grpc.ClientConn, sd protoreflect.ServiceDescriptor, table map[string]Who, keys Keys) {
	t.Helper()
	methods := sd.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		who, ok := table[string(m.Name())]
		if !ok {
			t.Errorf("%s: not in the test's table", m.FullName())
			continue
		}
		type caller struct{ name, key, kind, subject string }
		callers := []caller{{"no key", "", "", ""}, {"own account", keys.Own, "account", "own"}, {"other account", keys.Other, "account", "other"}, {"admin", keys.Admin, "admin", ""}}
		for name, key := range keys.Services {
			callers = append(callers, caller{"service:" + name, key, "service", name})
		}
		for _, c := range callers {
			want := expect(who, c.kind, c.subject)
			got := invoke(conn, sd, m, c.key, keys.OwnAccount)
			denied := got == codes.Unauthenticated || got == codes.PermissionDenied
			switch {
			case want == codes.OK && denied:
				t.Errorf("%s by %s: %v, want it admitted", m.Name(), c.name, got)
			case want != codes.OK && got != want:
				t.Errorf("%s by %s: %v, want %v", m.Name(), c.name, got, want)
			}
		}
	}
	for name := range table {
		if methods.ByName(protoreflect.Name(name)) == nil {
			t.Errorf("table names %s, which %s does not have", name, sd.FullName())
		}
	}
}

func expect(w Who, kind, subject string) codes.Code {
	switch {
	case w.Public:
		return codes.OK
	case kind == "":
		return codes.Unauthenticated
	case kind == "admin":
		return codes.OK
	case kind == "account" && (w.Accounts == "any" || (w.Accounts == "own" && subject == "own")):
		return codes.OK
	case kind == "service" && (slices.Contains(w.Services, "*") || slices.Contains(w.Services, subject)):
		return codes.OK
	}
	return codes.PermissionDenied
}

// invoke sends a minimal request naming account (in every account_id field it can reach) and
// returns the code of the answer. Streams get one message; a stream still open after a moment has
// been admitted.
func invoke(conn *grpc.ClientConn, sd protoreflect.ServiceDescriptor, m protoreflect.MethodDescriptor, key, account string) codes.Code {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	req := dynamicpb.NewMessage(m.Input())
	nameAccount(req, account, 2)
	resp := dynamicpb.NewMessage(m.Output())
	full := fmt.Sprintf("/%s/%s", sd.FullName(), m.Name())
	if !m.IsStreamingClient() && !m.IsStreamingServer() {
		return status.Code(conn.Invoke(ctx, full, req, resp))
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: string(m.Name()), ServerStreams: m.IsStreamingServer(), ClientStreams: m.IsStreamingClient()}, full)
	if err != nil {
		return status.Code(err)
	}
	if err := s.SendMsg(req); err != nil && err.Error() != "EOF" {
		return status.Code(err)
	}
	_ = s.CloseSend()
	err = s.RecvMsg(resp)
	if err == nil {
		return codes.OK
	}
	return status.Code(err)
}

// nameAccount sets every string field called account_id to account, descending into message fields
// and adding one element to repeated message fields, down to depth levels.
func nameAccount(msg protoreflect.Message, account string, depth int) {
	fields := msg.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch {
		case f.Name() == "account_id" && f.Kind() == protoreflect.StringKind && !f.IsList():
			msg.Set(f, protoreflect.ValueOfString(account))
		case depth > 0 && f.Kind() == protoreflect.MessageKind && f.IsList() && hasAccountField(f.Message(), depth-1):
			el := msg.Mutable(f).List().AppendMutable()
			nameAccount(el.Message(), account, depth-1)
		case depth > 0 && f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() && hasAccountField(f.Message(), depth-1):
			nameAccount(msg.Mutable(f).Message(), account, depth-1)
		}
	}
}

func hasAccountField(md protoreflect.MessageDescriptor, depth int) bool {
	fields := md.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Name() == "account_id" && f.Kind() == protoreflect.StringKind {
			return true
		}
		if depth > 0 && f.Kind() == protoreflect.MessageKind && hasAccountField(f.Message(), depth-1) {
			return true
		}
	}
	return false
}
