package webhook

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// rawReceiver is an endpoint that speaks whatever bytes serve writes on each connection (after the
// request head and body were read, unless serve reads them itself): the receivers a customer may
// point an endpoint at are arbitrary programs, not well-behaved HTTP servers.
func rawReceiver(t *testing.T, serve func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook"
}

// readRequest consumes one request (head and body) so that what follows is the receiver's answer.
func readRequest(r *bufio.Reader) bool {
	req, err := http.ReadRequest(r)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err == nil
}

// oneAttempt delivers one event to url and returns its first recorded attempt.
func oneAttempt(t *testing.T, url string, cfg Config) Result {
	t.Helper()
	st := newMemStore()
	addEvents(st, 1, Endpoint{ID: "we_h", URL: url, Secrets: []string{"s"}}, "h")
	cfg.PollInterval, cfg.InitialBackoff = 5*time.Millisecond, time.Hour
	d, stop := start(t, st, cfg)
	d.Kick()
	eventually(t, 30*time.Second, "one attempt recorded", func() bool { _, log := st.snapshot(); return len(log) >= 1 })
	stop()
	_, log := st.snapshot()
	return log[0]
}

// Whatever a receiver does, the attempt ends within RequestTimeout, and what it records of the
// answer is bounded: a receiver cannot hold a worker longer, nor make the attempt log large.
func TestHostileReceiversAreCutOffAtTheTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	drip := func(c net.Conn, s string) {
		for i := range len(s) {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var endlessWritten atomic.Int64
	endlessDone := make(chan struct{})
	cases := []struct {
		name    string
		serve   func(c net.Conn, r *bufio.Reader)
		outcome Outcome
		status  int
		errHas  string
	}{
		{"accepts and never reads", func(c net.Conn, r *bufio.Reader) {
			time.Sleep(10 * timeout)
		}, Failed, 0, "deadline exceeded"},
		{"reads the request and never answers", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			time.Sleep(10 * timeout)
		}, Failed, 0, "deadline exceeded"},
		{"status line one byte per 100ms", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			drip(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}, Failed, 0, "deadline exceeded"},
		{"closes before answering", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
		}, Failed, 0, "EOF"},
		{"garbage instead of HTTP", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			c.Write([]byte("\x00\xffSSH-2.0-nope\r\n\r\n"))
		}, Failed, 0, "malformed HTTP"},
		{"2 MiB of headers", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			c.Write([]byte("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\nContent-Length: 0\r\n\r\n"))
		}, Failed, 0, "headers exceeded"},
		// The receiver said 200: it has the event. The rest of its body is not waited for.
		{"200 then the body one byte per 100ms", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
			drip(c, strings.Repeat("x", 100))
		}, Delivered, 200, ""},
		{"200 then closes mid-body", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"))
		}, Delivered, 200, ""},
		{"200 and an endless body", func(c net.Conn, r *bufio.Reader) {
			defer close(endlessDone)
			readRequest(r)
			c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
			chunk := []byte("10000\r\n" + strings.Repeat("x", 1<<16) + "\r\n")
			for {
				n, err := c.Write(chunk)
				endlessWritten.Add(int64(n))
				if err != nil {
					return
				}
			}
		}, Delivered, 200, ""},
		{"410 Gone", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			c.Write([]byte("HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone"))
		}, Failed, 410, "answered 410"},
		{"redirect to itself", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			c.Write([]byte("HTTP/1.1 307 Temporary Redirect\r\nLocation: /hook\r\nContent-Length: 0\r\n\r\n"))
		}, Failed, 307, "answered 307"},
		{"redirect to the metadata address", func(c net.Conn, r *bufio.Reader) {
			readRequest(r)
			c.Write([]byte("HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n"))
		}, Failed, 302, "answered 302"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := rawReceiver(t, tc.serve)
			r := oneAttempt(t, url, Config{RequestTimeout: timeout})
			if r.Outcome != tc.outcome || r.StatusCode != tc.status || !strings.Contains(r.Error, tc.errHas) {
				t.Fatalf("attempt %v, status %d, error %q; want %v, %d, an error naming %q", r.Outcome, r.StatusCode, r.Error, tc.outcome, tc.status, tc.errHas)
			}
			// Generous slack for a loaded machine; what matters is that it is not the receiver's pace.
			if r.Duration > timeout+2*time.Second {
				t.Fatalf("attempt took %v, RequestTimeout is %v", r.Duration, timeout)
			}
			if len(r.Response) > maxResponse || len(r.Error) > maxError || !utf8.ValidString(r.Response+r.Error) {
				t.Fatalf("recorded %d bytes of response, %d of error (valid UTF-8: %v)", len(r.Response), len(r.Error), utf8.ValidString(r.Response+r.Error))
			}
		})
	}
	select {
	case <-endlessDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the endless body was still being taken 10 s on")
	}
	// What was read is 256 bytes plus at most 64 KiB to reuse the connection; the rest is the
	// loopback socket buffers', a few MiB at most.
	if n := endlessWritten.Load(); n > 32<<20 {
		t.Fatalf("the endless receiver got %d bytes taken off its hands", n)
	}
}

// The attempt log holds what a receiver answered as text PostgreSQL stores: valid UTF-8 without
// NUL, at most 256 bytes, whatever the bytes (a record that fails makes the attempt again, forever).
func TestReceiverAnswerIsRecordedAsStorableText(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"a character across the 256-byte cut", strings.Repeat("a", 255) + "é", strings.Repeat("a", 255)},
		{"NUL and invalid bytes", "ok\x00\xff\xfe!", "ok\uFFFD\uFFFD!"},
		{"multi-byte text longer than the cut", strings.Repeat("é", 200), strings.Repeat("é", 128)},
		{"invalid bytes up to the cut", strings.Repeat("\xff", 300), "\uFFFD"}, // one per run of invalid bytes
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := rawReceiver(t, func(c net.Conn, r *bufio.Reader) {
				readRequest(r)
				c.Write([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n" + tc.body))
			})
			r := oneAttempt(t, srv, Config{RequestTimeout: 5 * time.Second})
			if r.Outcome != Failed || r.StatusCode != 500 {
				t.Fatalf("attempt %v, status %d; want failed, 500", r.Outcome, r.StatusCode)
			}
			if !utf8.ValidString(r.Response) || strings.Contains(r.Response, "\x00") || len(r.Response) > maxResponse {
				t.Fatalf("recorded response %q (%d bytes): want valid UTF-8 without NUL, at most %d bytes", r.Response, len(r.Response), maxResponse)
			}
			if r.Response != tc.want {
				t.Fatalf("recorded response %q, want %q", r.Response, tc.want)
			}
		})
	}
}

func TestStorable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 5, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"ab€", 4, "ab"}, // € is 3 bytes: not split
		{"a\x00b", 10, "a\uFFFDb"},
		{"a\xc3", 10, "a\uFFFD"},
	} {
		if got := storable(tc.in, tc.n); got != tc.want {
			t.Errorf("storable(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
