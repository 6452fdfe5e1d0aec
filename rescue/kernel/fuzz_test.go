//go:build linux

package kernel

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseDep checks that parseDep never panics, accepts only module files
// inside the module directory, and that what formatDep writes from its
// result parses back to the same and has the shape kmodule needs. The seed
// corpus is in testdata/fuzz/FuzzParseDep.
func FuzzParseDep(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseDep(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, e := range entries {
			for _, p := range append([]string{e.Rel}, e.Deps...) {
				if !validRel(p) {
					t.Fatalf("parseDep accepted %q", p)
				}
			}
		}
		var b bytes.Buffer
		if err := formatDep(&b, entries); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.SplitAfter(b.String(), "\n") {
			if line == "" {
				continue
			}
			if strings.Count(line, ":") != 1 || strings.HasSuffix(line, " \n") || !strings.HasSuffix(line, "\n") {
				t.Fatalf("formatDep wrote %q", line)
			}
		}
		again, err := parseDep(&b)
		if err != nil {
			t.Fatalf("formatDep output does not parse: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(again, entries) {
			t.Fatalf("round trip changed %q to %q", entries, again)
		}
	})
}
