package docstest

import (
	"context"
	"strings"
	"testing"
)

const sample = "# Title\n\n" +
	"```sh\n" +
	"admin() { echo \"$@\"; }\n" +
	"\n" +
	"# a comment line\n" +
	"admin -d '{\"a\": 1,\n" +
	"  \"b\": \"x # not a comment\"}' \\\n" +
	"  host:1 Svc/Method        # PermissionDenied: customers go through matching\n" +
	"echo REJECT_REASON_X  # REJECT_REASON_X\n" +
	"# Watch in another terminal\n" +
	"yes tick\n" +
	"echo done # fills 0.2 at 50000\n" +
	"```\n" +
	"\n<!-- readme-test: skip needs a Kubernetes cluster -->\n" +
	"```sh\n" +
	"kubectl get pods\n" +
	"```\n" +
	"```\nnot sh\n```\n"

func TestBlocksSplitCommandsLikeBash(t *testing.T) {
	blocks, err := Blocks(sample)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 {
		t.Fatalf("blocks = %d, want 2 (the untyped fence is not an example)", len(blocks))
	}
	cmds := blocks[0].Commands
	if len(cmds) != 5 {
		for _, c := range cmds {
			t.Logf("line %d: %q", c.Line, c.Text)
		}
		t.Fatalf("commands = %d, want 5", len(cmds))
	}
	if got := cmds[1]; got.Line != 7 || !strings.Contains(got.Text, "Svc/Method") || got.Expect().FailCode != "PermissionDenied" {
		t.Errorf("multi-line command = %+v, expect %+v", got, got.Expect())
	}
	if e := cmds[2].Expect(); e.Contains != "REJECT_REASON_X" || e.FailCode != "" {
		t.Errorf("enum expectation = %+v", e)
	}
	if !cmds[3].Streaming || cmds[2].Streaming || cmds[4].Streaming {
		t.Errorf("streaming flags: %v %v %v", cmds[2].Streaming, cmds[3].Streaming, cmds[4].Streaming)
	}
	if e := cmds[4].Expect(); e != (Expectation{}) {
		t.Errorf("a plain comment expects success, got %+v", e)
	}
	if blocks[1].Skip != "needs a Kubernetes cluster" {
		t.Errorf("skip = %q", blocks[1].Skip)
	}
}

func TestBlocksRefuseBrokenExamples(t *testing.T) {
	for name, md := range map[string]string{
		"unclosed block":      "```sh\necho hi\n",
		"unclosed quote":      "```sh\necho 'hi\n```\n",
		"trailing backslash":  "```sh\necho hi \\\n```\n",
		"skip without reason": "<!-- readme-test: skip -->\n```sh\necho hi\n```\n",
	} {
		if _, err := Blocks(md); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRunChecksEveryCommand(t *testing.T) {
	md := "```sh\n" +
		"f() { echo \"f:$1\"; }\n" +
		"f one\n" +
		"sh -c 'echo \"ERROR: Code: NotFound\"; exit 1'   # NotFound: no such thing\n" +
		"false\n" +
		"echo nothing   # REJECT_REASON_Y\n" +
		"# stream in another terminal\n" +
		"while :; do echo tick; sleep 0.1; done\n" +
		"true   # InvalidArgument: but it succeeds\n" +
		"```\n"
	blocks, err := Blocks(md)
	if err != nil {
		t.Fatal(err)
	}
	results, err := Run(context.Background(), t.TempDir(), blocks)
	if err != nil {
		t.Fatal(err)
	}
	var failures []string
	for _, r := range results {
		failures = append(failures, r.Failure())
	}
	want := []string{"", "", "", "exit code 1", "the output does not contain REJECT_REASON_Y", "",
		"succeeded, but its comment says it fails with InvalidArgument"}
	if strings.Join(failures, "|") != strings.Join(want, "|") {
		t.Fatalf("failures = %q\nwant       %q", failures, want)
	}
	if out := results[1].Output; out != "f:one\n" {
		t.Errorf("a function defined in one command is there for the next: output %q", out)
	}
	if !strings.Contains(results[5].Output, "tick") {
		t.Errorf("stream output = %q", results[5].Output)
	}
}

// A streaming example that dies on its own (a refused dial, a bad flag) printed its error, which is
// output: it must fail by its exit code, not pass for having "streamed" something.
func TestRunFailsAStreamThatEndsWithAnError(t *testing.T) {
	md := "```sh\n" +
		"# watch it (Ctrl-C to stop)\n" +
		"sh -c 'echo \"Failed to dial target host\"; exit 1'\n" +
		"# in another terminal\n" +
		"sh -c 'echo done; exit 0'\n" +
		"# in another terminal\n" +
		"while :; do echo tick; sleep 0.1; done\n" +
		"```\n"
	blocks, err := Blocks(md)
	if err != nil {
		t.Fatal(err)
	}
	results, err := Run(context.Background(), t.TempDir(), blocks)
	if err != nil {
		t.Fatal(err)
	}
	var failures []string
	for _, r := range results {
		failures = append(failures, r.Failure())
	}
	want := []string{"ended with exit code 1 before the end of its block", "", ""}
	if strings.Join(failures, "|") != strings.Join(want, "|") {
		t.Fatalf("failures = %q\nwant       %q", failures, want)
	}
	if !strings.Contains(results[0].Output, "Failed to dial") {
		t.Errorf("the failed stream's output = %q", results[0].Output)
	}
}
