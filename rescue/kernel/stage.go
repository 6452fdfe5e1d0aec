//go:build linux

package kernel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Stage writes a module tree with only mods into dir/lib/modules/<Version>/,
// replacing whatever was there: the module files as the kernel package
// ships them (kmodule decompresses .ko.xz, .ko.gz and .ko.zst itself, and
// stripping would break Debian's module signatures), and the metadata
// files filtered to those modules:
//
//   - modules.dep, for kmodule.Probe;
//   - modules.alias, to match devices' modaliases to modules;
//   - modules.softdep, modules.order and modules.devname;
//   - modules.builtin and modules.builtin.modinfo, so that probing a
//     built-in module succeeds.
//
// Staged file names are spelt with "_" only (kernel/fs/nls/nls_iso8859_1.ko
// for nls_iso8859-1.ko), here and in the metadata: kmodule looks a module up
// by its name spelt all with "-" or all with "_", so it never finds a file
// whose name mixes them. The kernel takes the module's name from inside
// the file, so the rename changes nothing else.
//
// mods is normally what Resolve returned; Stage fails if a module's
// dependency is missing from it.
func (k *Kernel) Stage(dir string, mods []Module) error {
	ix, err := k.load()
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, "lib", "modules", k.Version)
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("stage modules: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("stage modules: %w", err)
	}

	var entries []depEntry            // as staged
	selected := make(map[string]bool) // by name
	staged := make(map[string]string) // Rel → staged Rel
	owner := make(map[string]string)  // staged Rel → Rel
	for _, m := range mods {
		e := ix.byRel[filepath.ToSlash(m.Rel)]
		if e == nil || moduleName(e.Rel) != NormalizeName(m.Name) {
			return fmt.Errorf("stage modules: %s (%s) is not in %s; pass modules Resolve returned for this kernel",
				m.Name, m.Rel, filepath.Join(k.ModuleDir, "modules.dep"))
		}
		if staged[e.Rel] != "" {
			continue
		}
		to := stagedRel(e.Rel)
		if o := owner[to]; o != "" {
			return fmt.Errorf("stage modules: %s and %s would both be staged as %s", o, e.Rel, to)
		}
		staged[e.Rel], owner[to] = to, e.Rel
		selected[moduleName(e.Rel)] = true
		entries = append(entries, *e)
	}
	for i, e := range entries {
		out := depEntry{Rel: staged[e.Rel]}
		for _, d := range e.Deps {
			if staged[d] == "" {
				return fmt.Errorf("stage modules: %s needs %s, which is not among the modules to stage; pass what Resolve returned", e.Rel, d)
			}
			out.Deps = append(out.Deps, staged[d])
		}
		if err := copyFile(filepath.Join(k.ModuleDir, e.Rel), filepath.Join(dst, out.Rel)); err != nil {
			return fmt.Errorf("stage modules: %w", err)
		}
		entries[i] = out
	}

	var dep bytes.Buffer
	if err := formatDep(&dep, entries); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "modules.dep"), dep.Bytes(), 0o644); err != nil {
		return fmt.Errorf("stage modules: %w", err)
	}

	// edit returns a line of a metadata file as staged, or "" to drop it;
	// comment lines are always kept.
	filters := []struct {
		name string
		edit func(line string, fs []string) string
	}{
		{"modules.alias", keepIf(func(fs []string) bool { return len(fs) == 3 && fs[0] == "alias" && selected[NormalizeName(fs[2])] })},
		{"modules.softdep", keepIf(func(fs []string) bool { return len(fs) >= 2 && fs[0] == "softdep" && selected[NormalizeName(fs[1])] })},
		{"modules.devname", keepIf(func(fs []string) bool { return selected[NormalizeName(fs[0])] })},
		{"modules.order", func(_ string, fs []string) string {
			if len(fs) == 1 {
				return staged[fs[0]]
			}
			return ""
		}},
		{"modules.builtin", func(line string, fs []string) string {
			if len(fs) == 1 && moduleName(fs[0]) != "" {
				return stagedRel(fs[0])
			}
			return line
		}},
		{"modules.builtin.modinfo", nil},
	}
	for _, f := range filters {
		if err := filterFile(filepath.Join(k.ModuleDir, f.name), filepath.Join(dst, f.name), f.edit); err != nil {
			return fmt.Errorf("stage modules: %w", err)
		}
	}
	return nil
}

// stagedRel is the name Stage gives a module file: its directory, and its
// base name with "_" for "-".
func stagedRel(rel string) string {
	dir, base := path.Split(rel)
	return dir + NormalizeName(base)
}

// keepIf returns an edit function for filterFile that keeps the lines
// whose fields keep accepts, unchanged.
func keepIf(keep func(fs []string) bool) func(string, []string) string {
	return func(line string, fs []string) string {
		if keep(fs) {
			return line
		}
		return ""
	}
}

// filterFile writes the lines of src, as edit returns them, to dst, or
// copies src unchanged if edit is nil. A missing src is not an error: the
// files besides modules.dep are optional.
func filterFile(src, dst string, edit func(line string, fs []string) string) error {
	if edit == nil {
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return copyFile(src, dst)
	}
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	var out bytes.Buffer
	s := bufio.NewScanner(in)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := s.Text()
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if !strings.HasPrefix(fs[0], "#") {
			line = edit(line, fs)
		}
		if line != "" {
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return os.WriteFile(dst, out.Bytes(), 0o644)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
