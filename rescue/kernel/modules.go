//go:build linux

package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Module is one loadable kernel module file.
type Module struct {
	Name string // canonical module name, with underscores: "usb_storage"
	Path string // absolute path of the .ko (or .ko.xz, .ko.gz, .ko.zst)
	Rel  string // Path relative to the module directory, e.g. kernel/drivers/block/virtio_blk.ko
}

// ErrUnknownModule is wrapped by Resolve when a requested module is neither
// a loadable module nor built into the kernel. Check the spelling against
// modules.dep, or drop the module: this kernel does not have it.
var ErrUnknownModule = errors.New("unknown kernel module")

// moduleSuffixes are the module file names depmod and kmodule know.
var moduleSuffixes = []string{".ko", ".ko.xz", ".ko.gz", ".ko.zst"}

// moduleName returns the canonical name of a module file:
// kernel/drivers/usb/storage/usb-storage.ko.xz is usb_storage.
func moduleName(rel string) string {
	base := filepath.Base(rel)
	for _, s := range moduleSuffixes {
		if n, ok := strings.CutSuffix(base, s); ok {
			return NormalizeName(n)
		}
	}
	return ""
}

// validRel reports whether rel is a module file path inside a module
// directory; modules.dep may come from a user's directory, and Stage
// writes files by these names.
func validRel(rel string) bool {
	return filepath.IsLocal(rel) && !strings.ContainsAny(rel, "\\:") && moduleName(rel) != ""
}

// depEntry is one line of modules.dep: a module and the files of all the
// modules it needs, as depmod lists them.
type depEntry struct {
	Rel  string
	Deps []string
}

// parseDep parses modules.dep:
//
//	kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
//	kernel/drivers/virtio/virtio.ko:
//
// Blank lines and # comments are skipped.
func parseDep(r io.Reader) ([]depEntry, error) {
	var out []depEntry
	seen := make(map[string]bool)
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		rel, deps, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("modules.dep line %d: no colon in %q", n, line)
		}
		e := depEntry{Rel: strings.TrimSpace(rel), Deps: strings.Fields(deps)}
		for _, p := range append([]string{e.Rel}, e.Deps...) {
			if !validRel(p) {
				return nil, fmt.Errorf("modules.dep line %d: %q is not a module file inside the module directory", n, p)
			}
		}
		if seen[e.Rel] {
			return nil, fmt.Errorf("modules.dep line %d: %s listed twice", n, e.Rel)
		}
		seen[e.Rel] = true
		if len(e.Deps) == 0 {
			e.Deps = nil
		}
		out = append(out, e)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	return out, nil
}

// formatDep writes modules.dep the way depmod does and kmodule accepts:
// "rel:" then " dep" for each dependency, and no trailing space (kmodule
// reads "rel: " as a dependency on the module directory itself).
func formatDep(w io.Writer, entries []depEntry) error {
	bw := bufio.NewWriter(w)
	for _, e := range entries {
		bw.WriteString(e.Rel)
		bw.WriteByte(':')
		for _, d := range e.Deps {
			bw.WriteByte(' ')
			bw.WriteString(d)
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// parseSoftdep parses modules.softdep and returns, for each module name,
// the modules or aliases to load before it:
//
//	softdep ext4 pre: crypto-crc32c
//	softdep ipmi_msghandler post: ipmi_devintf
//
// Only "pre:" entries matter to a loader that loads what it is told in
// order; "post:" entries and words before any "pre:" or "post:" are
// ignored, as modprobe does.
func parseSoftdep(r io.Reader) (map[string][]string, error) {
	out := make(map[string][]string)
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20)
	for n := 1; s.Scan(); n++ {
		fs := strings.Fields(s.Text())
		if len(fs) == 0 || strings.HasPrefix(fs[0], "#") || fs[0] != "softdep" {
			continue
		}
		if len(fs) < 2 {
			return nil, fmt.Errorf("modules.softdep line %d: no module name", n)
		}
		name := NormalizeName(fs[1])
		pre := false
		for _, f := range fs[2:] {
			switch f {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				if pre && !slices.Contains(out[name], f) {
					out[name] = append(out[name], f)
				}
			}
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("modules.softdep: %w", err)
	}
	return out, nil
}

// parseBuiltin parses modules.builtin, a list of module files that are part
// of the kernel image, and returns their names.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	out := make(map[string]bool)
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if n := moduleName(line); n != "" {
			out[n] = true
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("modules.builtin: %w", err)
	}
	return out, nil
}

// index is a module directory's metadata.
type index struct {
	dir     string
	order   []depEntry           // modules.dep in file order
	byName  map[string]*depEntry // by module name
	byRel   map[string]*depEntry
	builtin map[string]bool
	softdep map[string][]string
	aliases *Aliases
	// builtinAliases are the aliases of built-in code
	// (modules.builtin.modinfo): a name only they match needs no module.
	builtinAliases *Aliases
}

// load reads the module directory's modules.dep (required) and
// modules.builtin, modules.softdep, modules.alias and
// modules.builtin.modinfo (each optional).
func (k *Kernel) load() (*index, error) {
	ix := &index{dir: k.ModuleDir, byName: make(map[string]*depEntry), byRel: make(map[string]*depEntry)}
	if err := parseFile(k.ModuleDir, "modules.dep", true, func(r io.Reader) (err error) {
		ix.order, err = parseDep(r)
		return err
	}); err != nil {
		return nil, err
	}
	for i := range ix.order {
		e := &ix.order[i]
		ix.byRel[e.Rel] = e
		// depmod lists one file per name; should a hand-made file list
		// more, the first wins, as with modprobe's search order.
		if n := moduleName(e.Rel); ix.byName[n] == nil {
			ix.byName[n] = e
		}
	}
	if err := parseFile(k.ModuleDir, "modules.builtin", false, func(r io.Reader) (err error) {
		ix.builtin, err = parseBuiltin(r)
		return err
	}); err != nil {
		return nil, err
	}
	if err := parseFile(k.ModuleDir, "modules.softdep", false, func(r io.Reader) (err error) {
		ix.softdep, err = parseSoftdep(r)
		return err
	}); err != nil {
		return nil, err
	}
	if err := parseFile(k.ModuleDir, "modules.alias", false, func(r io.Reader) (err error) {
		ix.aliases, err = ParseAliases(r)
		return err
	}); err != nil {
		return nil, err
	}
	if err := parseFile(k.ModuleDir, "modules.builtin.modinfo", false, func(r io.Reader) (err error) {
		ix.builtinAliases, err = ParseBuiltinModinfo(r)
		return err
	}); err != nil {
		return nil, err
	}
	return ix, nil
}

func parseFile(dir, name string, required bool, parse func(io.Reader) error) error {
	p := filepath.Join(dir, name)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		if name == "modules.dep" {
			return fmt.Errorf("kernel modules: %w; run depmod for this release", err)
		}
		return fmt.Errorf("kernel modules: %w", err)
	}
	defer f.Close()
	if err := parse(f); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// lookup turns a name as a user or a softdep writes it into module names:
// a module name (either spelling), else every module an alias of that name
// matches. builtin is true if the name is, or only matches, built-in code.
func (ix *index) lookup(name string) (mods []string, builtin bool) {
	n := NormalizeName(name)
	if ix.byName[n] != nil {
		return []string{n}, false
	}
	if ix.builtin[n] {
		return nil, true
	}
	for _, mod := range ix.aliases.Match(name) {
		switch {
		case ix.byName[mod] != nil:
			mods = append(mods, mod)
		case ix.builtin[mod]:
			builtin = true
		}
	}
	if len(mods) > 0 {
		return mods, false
	}
	if !builtin {
		builtin = len(ix.builtinAliases.Match(name)) > 0
	}
	return mods, builtin
}

// Resolve returns the modules to load for names, with everything they
// need, each once, in an order in which they can be loaded one after the
// other: each module after the modules it depends on (modules.dep) and
// after the modules its "pre:" soft dependencies name (modules.softdep;
// ext4 wants crypto-crc32c, which are crc32c_intel and crc32c_generic).
//
// A name is a module name ("usb-storage" and "usb_storage" are the same)
// or, as with modprobe, an alias such as "crypto-crc32c". Names that are
// built into the kernel (modules.builtin), or aliases only built-in code
// has (modules.builtin.modinfo), yield nothing. Unknown names are
// an error that wraps ErrUnknownModule and lists them all.
//
// A soft dependency may fail to load on some machines (crc32c_intel needs
// SSE4.2); a loader should report such failures and go on.
func (k *Kernel) Resolve(names []string) ([]Module, error) {
	ix, err := k.load()
	if err != nil {
		return nil, err
	}
	r := resolver{ix: ix, state: make(map[string]int)}
	var unknown []string
	for _, name := range names {
		mods, builtin := ix.lookup(name)
		if len(mods) == 0 && !builtin {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		for _, m := range mods {
			if err := r.visit(m); err != nil {
				return nil, err
			}
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w %s: neither in %s nor built into kernel %s", ErrUnknownModule,
			strings.Join(unknown, ", "), filepath.Join(k.ModuleDir, "modules.dep"), k.Version)
	}
	return r.out, nil
}

type resolver struct {
	ix    *index
	state map[string]int // 1 while visiting, 2 when done
	out   []Module
}

func (r *resolver) visit(name string) error {
	if r.state[name] != 0 {
		// Done, or a cycle through soft dependencies, which modprobe
		// breaks the same way: by loading what it has.
		return nil
	}
	r.state[name] = 1
	for _, s := range r.ix.softdep[name] {
		mods, _ := r.ix.lookup(s) // missing soft dependencies are not errors
		for _, m := range mods {
			if err := r.visit(m); err != nil {
				return err
			}
		}
	}
	e := r.ix.byName[name]
	// modprobe loads the listed dependencies from the last to the first;
	// do the same so the order looks familiar.
	for i := len(e.Deps) - 1; i >= 0; i-- {
		d := r.ix.byRel[e.Deps[i]]
		if d == nil {
			return fmt.Errorf("%s: %s needs %s, which has no line of its own; run depmod again",
				filepath.Join(r.ix.dir, "modules.dep"), e.Rel, e.Deps[i])
		}
		if err := r.visit(moduleName(d.Rel)); err != nil {
			return err
		}
	}
	r.state[name] = 2
	r.out = append(r.out, Module{Name: name, Path: filepath.Join(r.ix.dir, e.Rel), Rel: e.Rel})
	return nil
}
