package docstest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Result is what one command did.
type Result struct {
	Command Command
	Code    int    // exit code (streaming commands: 0 when killed at the end of the block, else their own)
	Output  string // stdout and stderr together
}

// Failure says why a result does not meet its command's expectation, or "" when it does.
func (r Result) Failure() string {
	e := r.Command.Expect()
	switch {
	case r.Command.Streaming:
		// An error message is output too: a stream that died on its own fails by its code.
		if r.Code != 0 {
			return fmt.Sprintf("ended with exit code %d before the end of its block", r.Code)
		}
		if strings.TrimSpace(r.Output) == "" {
			return "streamed nothing before the end of its block"
		}
	case e.FailCode != "":
		if r.Code == 0 {
			return "succeeded, but its comment says it fails with " + e.FailCode
		}
		if !strings.Contains(r.Output, "Code: "+e.FailCode) {
			return "expected to fail with " + e.FailCode
		}
	case r.Code != 0:
		return fmt.Sprintf("exit code %d", r.Code)
	case e.Contains != "" && !strings.Contains(r.Output, e.Contains):
		return "the output does not contain " + e.Contains
	}
	return ""
}

const marker = "::docstest::"

// Run runs the blocks (those not skipped) in one bash process in dir, in order, so functions and
// state carry from one block to the next as they would for a reader, and reports every command.
func Run(ctx context.Context, dir string, blocks []Block, env ...string) ([]Result, error) {
	var script strings.Builder
	script.WriteString("exec 2>&1\nstreams=()\nstreamids=()\n")
	var cmds []Command
	for _, b := range blocks {
		if b.Skip != "" {
			continue
		}
		for _, c := range b.Commands {
			n := len(cmds)
			cmds = append(cmds, c)
			fmt.Fprintf(&script, "echo '%sbegin %d'\n", marker, n)
			if c.Streaming {
				fmt.Fprintf(&script, "( %s\n) >\"$DOCSTEST_TMP/stream-%d\" 2>&1 </dev/null &\nstreams+=($!)\nstreamids+=(%d)\nsleep 1\necho '%send %d 0'\n", c.Text, n, n, marker, n)
				continue
			}
			fmt.Fprintf(&script, "%s\necho \"%send %d $?\"\n", c.Text, marker, n)
		}
		// A streaming command lasts until the end of its block: stop it, then show what it printed.
		// Our SIGTERM's 143 counts as 0; any other code is the command's own, from ending by itself
		// (kill -0 also succeeds on one that ended but is not reaped yet, so the code decides).
		fmt.Fprintf(&script, "for i in \"${!streams[@]}\"; do p=${streams[$i]}; "+
			"kill $p 2>/dev/null; wait $p 2>/dev/null; c=$?; [ $c -eq 143 ] && c=0; "+
			"echo \"%sstreamexit ${streamids[$i]} $c\"; done; streams=(); streamids=()\n", marker)
		for n := len(cmds) - len(b.Commands); n < len(cmds); n++ {
			if cmds[n].Streaming {
				fmt.Fprintf(&script, "echo '%sstream %d'; cat \"$DOCSTEST_TMP/stream-%d\"\n", marker, n, n)
			}
		}
	}
	tmp, err := os.MkdirTemp("", "docstest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), "DOCSTEST_TMP="+tmp)
	cmd.Stdin = strings.NewReader(script.String())
	var out bytes.Buffer
	cmd.Stdout = &out
	runErr := cmd.Run()
	results := parse(out.String(), cmds)
	if runErr != nil {
		return results, fmt.Errorf("bash: %w (after %d of %d commands)", runErr, len(results), len(cmds))
	}
	if len(results) != len(cmds) {
		return results, fmt.Errorf("only %d of %d commands ran", len(results), len(cmds))
	}
	return results, nil
}

func parse(out string, cmds []Command) []Result {
	results := make([]Result, 0, len(cmds))
	cur := -1
	var buf strings.Builder
	streamed := map[int]*strings.Builder{}
	streamCode := map[int]int{}
	var streamTo *strings.Builder
	for line := range strings.Lines(out) {
		rest, ok := strings.CutPrefix(line, marker)
		if !ok {
			switch {
			case streamTo != nil:
				streamTo.WriteString(line)
			case cur >= 0:
				buf.WriteString(line)
			}
			continue
		}
		f := strings.Fields(rest)
		switch {
		case len(f) == 2 && f[0] == "begin":
			cur, _ = strconv.Atoi(f[1])
			buf.Reset()
			streamTo = nil
		case len(f) == 3 && f[0] == "end":
			n, _ := strconv.Atoi(f[1])
			code, _ := strconv.Atoi(f[2])
			if n == cur && n < len(cmds) {
				results = append(results, Result{Command: cmds[n], Code: code, Output: buf.String()})
			}
			cur = -1
		case len(f) == 3 && f[0] == "streamexit":
			n, _ := strconv.Atoi(f[1])
			code, _ := strconv.Atoi(f[2])
			streamCode[n] = code
		case len(f) == 2 && f[0] == "stream":
			n, _ := strconv.Atoi(f[1])
			streamTo = &strings.Builder{}
			streamed[n] = streamTo
		}
	}
	for i := range results {
		if results[i].Command.Streaming {
			for n, c := range cmds {
				if c.Line == results[i].Command.Line {
					if streamed[n] != nil {
						results[i].Output = streamed[n].String()
					}
					results[i].Code = streamCode[n]
				}
			}
		}
	}
	return results
}
