// Command testgate reads `go test -json` on standard input, prints the
// tests' output as go test would, and fails when any test failed or was
// skipped for a reason not on the short list below: make test runs as
// root with every package installed, so a skip there hides a test that
// should have run ("every skip is visible").
//
//	go test -json ./... | go run ./cmd/testgate
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// allowed are skips that are right under make test: corpus and golden
// regeneration that runs only with -update, and helpers that run only
// when a test re-executes the binary.
var allowed = []string{
	"run with -update",
	"a helper the PXE tests run",
}

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	code, err := run(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testgate:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(in io.Reader, out io.Writer) (int, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	output := map[string][]string{} // package/test → output lines
	var skipped, failed []string
	allowedSkips := map[string]int{} // reason → count
	events := 0
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fmt.Fprintln(out, string(line)) // not JSON: go's own messages
			continue
		}
		events++
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			fmt.Fprint(out, e.Output)
			if e.Test != "" {
				output[key] = append(output[key], e.Output)
			}
		case "skip":
			if e.Test != "" {
				reason := logLines(output[key])
				if a := allowedReason(reason); a != "" {
					allowedSkips[a]++
				} else {
					skipped = append(skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
				}
			}
			delete(output, key)
		case "fail":
			failed = append(failed, key)
			delete(output, key)
		case "pass":
			delete(output, key)
		}
	}
	if err := sc.Err(); err != nil {
		return 1, err
	}
	if events == 0 {
		return 1, fmt.Errorf("no test events on standard input")
	}
	n := 0
	for _, c := range allowedSkips {
		n += c
	}
	fmt.Fprintf(out, "\ntestgate: %d skips, %d of them expected:\n", n+len(skipped), n)
	for _, a := range allowed {
		if c := allowedSkips[a]; c > 0 {
			fmt.Fprintf(out, "  %d × %q\n", c, a)
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(out, "testgate: %d tests skipped where make test should run them:\n", len(skipped))
		for _, s := range skipped {
			fmt.Fprintln(out, "  "+s)
		}
	}
	if len(failed) > 0 || len(skipped) > 0 {
		fmt.Fprintf(out, "testgate: FAIL (%d failed, %d skipped)\n", len(failed), len(skipped))
		return 1, nil
	}
	fmt.Fprintln(out, "testgate: every test ran and passed")
	return 0, nil
}

// allowedReason is the entry of allowed that reason contains, or "".
func allowedReason(reason string) string {
	for _, a := range allowed {
		if strings.Contains(reason, a) {
			return a
		}
	}
	return ""
}

// logLines keeps a test's own log lines (indented, "file.go:12: ...")
// without go test's "=== RUN" and "--- SKIP" lines.
func logLines(out []string) string {
	var keep []string
	for _, l := range out {
		if t := strings.TrimSpace(l); t != "" && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && !strings.HasPrefix(t, "---") && !strings.HasPrefix(t, "===") {
			keep = append(keep, t)
		}
	}
	return strings.Join(keep, " | ")
}
