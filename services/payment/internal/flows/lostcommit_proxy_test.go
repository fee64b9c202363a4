package flows

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// commitCutter is a TCP proxy in front of a real PostgreSQL server that can lose a COMMIT's answer:
// the armed COMMIT reaches the server, which commits it, and once the server has answered (ready
// for the next query) the client's connection is cut without that answer, as when the network or
// the server's host fails at that moment. Everything else passes unchanged, message by message
// (the PostgreSQL v3 protocol: an untyped startup message, then type byte, int32 length, payload).
type commitCutter struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	loseIn  int // the commit to lose, counting from 1; 0: none armed
	commits int // commits seen since armed
	lost    int // answers lost so far
}

func newCommitCutter(t *testing.T, target string) *commitCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &commitCutter{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { c.serve(client) })
		}
	})
	return c
}

func (c *commitCutter) addr() string { return c.ln.Addr().String() }

// loseCommit arms the proxy: the nth COMMIT from now (any connection) loses its answer.
func (c *commitCutter) loseCommit(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loseIn, c.commits = n, 0
}

// lostAnswers is how many COMMIT answers the proxy has lost.
func (c *commitCutter) lostAnswers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// seenCommit counts a COMMIT and reports whether its answer is to be lost.
func (c *commitCutter) seenCommit() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loseIn == 0 {
		return false
	}
	if c.commits++; c.commits < c.loseIn {
		return false
	}
	c.loseIn = 0
	c.lost++
	return true
}

func (c *commitCutter) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", c.target)
	if err != nil {
		return
	}
	defer server.Close()
	cut := make(chan struct{}) // closed once the armed COMMIT went to the server
	var once sync.Once
	done := make(chan struct{})
	go func() { // client → server
		defer close(done)
		if err := copyMessage(server, client, false); err != nil { // the startup message
			return
		}
		for {
			typ, msg, err := readMessage(client, true)
			if err != nil {
				server.Close()
				return
			}
			if (typ == 'Q' || typ == 'P') && isCommit(typ, msg) && c.seenCommit() {
				once.Do(func() { close(cut) })
			}
			if _, err := server.Write(msg); err != nil {
				return
			}
		}
	}()
	// server → client: after the cut nothing more is forwarded; the client's connection closes once
	// the server is ready for the next query (the commit is done).
	for {
		typ, msg, err := readMessage(server, true)
		if err != nil {
			break
		}
		select {
		case <-cut:
			if typ == 'Z' {
				client.Close()
				server.Close()
				<-done
				return
			}
			continue
		default:
		}
		if _, err := client.Write(msg); err != nil {
			break
		}
	}
	client.Close()
	<-done
}

// readMessage reads one protocol message (typed, or the untyped startup message) and returns its
// type and its bytes as they came.
func readMessage(r io.Reader, typed bool) (byte, []byte, error) {
	head := 4
	if typed {
		head = 5
	}
	buf := make([]byte, head, 64)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(buf[head-4:]))
	if n < 4 || n > 64<<20 {
		return 0, nil, errors.New("commitCutter: bad message length")
	}
	buf = append(buf, make([]byte, n-4)...)
	if _, err := io.ReadFull(r, buf[head:]); err != nil {
		return 0, nil, err
	}
	var typ byte
	if typed {
		typ = buf[0]
	}
	return typ, buf, nil
}

func copyMessage(w io.Writer, r io.Reader, typed bool) error {
	_, msg, err := readMessage(r, typed)
	if err == nil {
		_, err = w.Write(msg)
	}
	return err
}

// isCommit reports whether a Query ('Q': the SQL) or Parse ('P': name, then the SQL) message is a
// COMMIT.
func isCommit(typ byte, msg []byte) bool {
	body := msg[5:]
	if typ == 'P' {
		i := bytes.IndexByte(body, 0)
		if i < 0 {
			return false
		}
		body = body[i+1:]
	}
	if i := bytes.IndexByte(body, 0); i >= 0 {
		body = body[:i]
	}
	q := bytes.ToLower(bytes.TrimRight(bytes.TrimSpace(body), ";"))
	return bytes.Equal(q, []byte("commit")) || bytes.Equal(q, []byte("end"))
}
