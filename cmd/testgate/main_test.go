package main

import (
	"strings"
	"testing"
)

func events(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func TestGate(t *testing.T) {
	pass := `{"Action":"pass","Package":"p","Test":"TestA"}`
	helper := events(`{"Action":"output","Package":"p","Test":"TestHelper","Output":"    x_test.go:9: a helper the PXE tests run inside their network namespace\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestHelper"}`)
	rootSkip := events(`{"Action":"output","Package":"p","Test":"TestLoop","Output":"    x_test.go:12: loop devices need root\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestLoop"}`)
	for _, tc := range []struct {
		name, in string
		code     int
		want     []string
	}{
		{"all pass", events(pass), 0, []string{"0 skips", "every test ran and passed"}},
		{"expected skip counted", events(pass) + helper, 0, []string{"1 skips, 1 of them expected", `1 × "a helper the PXE tests run"`}},
		{"skip CI must run", events(pass) + helper + rootSkip, 1, []string{"2 skips, 1 of them expected", "p TestLoop: x_test.go:12: loop devices need root", "FAIL (0 failed, 1 skipped)"}},
		{"failure", events(`{"Action":"fail","Package":"p","Test":"TestB"}`), 1, []string{"FAIL (1 failed, 0 skipped)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			code, err := run(strings.NewReader(tc.in), &out)
			if err != nil || code != tc.code {
				t.Fatalf("code %d, err %v; want %d\n%s", code, err, tc.code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	if _, err := run(strings.NewReader(""), &strings.Builder{}); err == nil {
		t.Error("no events at all passed")
	}
}
