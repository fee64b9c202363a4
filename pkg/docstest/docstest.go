// Package docstest reads the shell examples out of a README so a test can run them, in order, against
// a running platform and check that each does what its comment says.
//
// A README example is a ```sh fenced block. Each block is split into commands the way bash would read
// them (quotes and trailing backslashes continue a command over lines). What a command is expected to
// do comes from the comment at its end of line:
//   - a gRPC code name first (`# PermissionDenied: customers trade through matching`): the command
//     must fail with that code;
//   - an upper-case enum value (`# REJECT_REASON_PRICE_OUTSIDE_BAND`): the output must contain it;
//   - anything else, or no comment: the command must succeed.
//
// A comment line above a command that says "(Ctrl-C to stop)" or "in another terminal" marks a
// command that streams: it runs in the background until the end of its block and must print
// something. An HTML comment `<!-- readme-test: skip <reason> -->` on the line before a block
// leaves that block out (for examples that need something make run does not start, such as a
// Kubernetes cluster); the reason is mandatory.
package docstest

import (
	"bufio"
	"fmt"
	"regexp"
	"strings"
)

// Block is one ```sh example.
type Block struct {
	Line     int // 1-based line of the opening fence
	Commands []Command
	Skip     string // the reason given when the block is marked to be skipped
}

// Command is one command of a block, with what its comments say about it.
type Command struct {
	Line      int    // 1-based line where it starts
	Text      string // as written, continuation lines included
	Comment   string // the comment at the end of its last line, without '#'
	Streaming bool
}

// Expectation is what a command must do.
type Expectation struct {
	FailCode string // a gRPC code name the command must fail with; "" when it must succeed
	Contains string // text the output must contain
}

var (
	skipMarker = regexp.MustCompile(`^<!--\s*readme-test:\s*skip\s*(.*?)\s*-->$`)
	enumWord   = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)
	grpcCodes  = []string{"Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
		"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
		"OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}
)

// Expect reads a command's expectation from its comment.
func (c Command) Expect() Expectation {
	comment := strings.TrimSpace(c.Comment)
	for _, code := range grpcCodes {
		if comment == code || strings.HasPrefix(comment, code+":") || strings.HasPrefix(comment, code+" ") {
			return Expectation{FailCode: code}
		}
	}
	if w := enumWord.FindString(comment); w != "" && strings.HasPrefix(comment, w) {
		return Expectation{Contains: w}
	}
	return Expectation{}
}

// Blocks returns the ```sh blocks of a Markdown document, in order.
func Blocks(markdown string) ([]Block, error) {
	var blocks []Block
	sc := bufio.NewScanner(strings.NewReader(markdown))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var (
		lineNo   int
		prev     string
		inBlock  bool
		body     []string
		start    int
		skip     string
		skipSeen bool
	)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case !inBlock && trimmed == "```sh":
			inBlock, body, start = true, nil, lineNo
			skip, skipSeen = "", false
			if m := skipMarker.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
				if m[1] == "" {
					return nil, fmt.Errorf("line %d: a readme-test skip marker needs a reason", lineNo-1)
				}
				skip, skipSeen = m[1], true
			}
		case inBlock && trimmed == "```":
			inBlock = false
			cmds, err := Commands(body, start+1)
			if err != nil {
				return nil, err
			}
			b := Block{Line: start, Commands: cmds}
			if skipSeen {
				b.Skip = skip
			}
			blocks = append(blocks, b)
		case inBlock:
			body = append(body, line)
		}
		prev = line
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if inBlock {
		return nil, fmt.Errorf("line %d: the ```sh block is never closed", start)
	}
	return blocks, nil
}

// Commands splits the lines of a block (the first one at line first) into commands.
func Commands(lines []string, first int) ([]Command, error) {
	var (
		cmds      []Command
		cur       []string
		curStart  int
		streaming bool
		quote     byte // 0, '\'' or '"' while a quoted string continues across lines
	)
	for i, line := range lines {
		if len(cur) == 0 {
			t := strings.TrimSpace(line)
			if t == "" {
				continue
			}
			if strings.HasPrefix(t, "#") {
				if strings.Contains(t, "(Ctrl-C to stop)") || strings.Contains(t, "in another terminal") {
					streaming = true
				}
				continue
			}
			curStart = first + i
		}
		cur = append(cur, line)
		var comment string
		quote, comment = scanLine(line, quote)
		if quote != 0 || strings.HasSuffix(strings.TrimRight(line, " \t"), "\\") {
			continue
		}
		cmds = append(cmds, Command{Line: curStart, Text: strings.Join(cur, "\n"), Comment: comment, Streaming: streaming})
		cur, streaming = nil, false
	}
	if len(cur) > 0 {
		return nil, fmt.Errorf("line %d: the command never ends (an unclosed quote or a trailing backslash)", curStart)
	}
	return cmds, nil
}

// scanLine follows bash quoting through one line, starting inside quote (0 for none), and returns the
// quote still open at its end and the comment that ends it, if any.
func scanLine(line string, quote byte) (byte, string) {
	wordStart := true
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch quote {
		case '\'':
			if c == '\'' {
				quote = 0
			}
			continue
		case '"':
			switch c {
			case '\\':
				i++
			case '"':
				quote = 0
			}
			continue
		}
		switch {
		case c == '\\':
			i++
			wordStart = false
		case c == '\'' || c == '"':
			quote = c
			wordStart = false
		case c == '#' && wordStart:
			return 0, strings.TrimSpace(line[i+1:])
		case c == ' ' || c == '\t' || c == ';' || c == '|' || c == '&' || c == '(' || c == ')':
			wordStart = true
		default:
			wordStart = false
		}
	}
	return quote, ""
}
