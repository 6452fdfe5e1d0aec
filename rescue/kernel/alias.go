package kernel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
)

// This file is the one modules.alias parser and matcher: the build-time
// resolver (Resolve, for names such as "crypto-crc32c") and the rescue
// environment's coldplug (device modaliases from /sys) both use it, so
// the module a device gets in the initramfs is the module it gets loaded.
// It has no build tag: matching is plain string work.

// Aliases is a parsed modules.alias. The zero value and nil match nothing.
// It is safe for concurrent use once parsed.
type Aliases struct {
	list []alias
	// byKey indexes list by the pattern's text before its first ":" (the
	// bus, "pci" or "usb", or the whole of a plain name); wild holds the
	// patterns whose key has a wildcard ("acpi*:PNP0A03:*"), tried for
	// every name. Both hold indexes into list, ascending.
	byKey map[string][]int
	wild  []int
}

// alias is one line of modules.alias: "alias <pattern> <module>".
type alias struct {
	pattern string // normalized, see normalizeAlias
	module  string // normalized, see NormalizeName
}

// ParseAliases parses modules.alias as depmod writes it:
//
//	alias pci:v00001AF4d00001001sv*sd*bc*sc*i* virtio_blk
//	alias crypto-crc32c crc32c_generic
//
// Lines that are not "alias PATTERN MODULE" are skipped, as modprobe does.
func ParseAliases(r io.Reader) (*Aliases, error) {
	a := &Aliases{byKey: make(map[string][]int)}
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) != 3 || fs[0] != "alias" {
			continue
		}
		a.add(fs[1], fs[2])
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("modules.alias: %w", err)
	}
	return a, nil
}

// ParseBuiltinModinfo reads the aliases of the code built into the kernel
// from modules.builtin.modinfo, which holds NUL-terminated
// "module.key=value" records ("virtio_pci.alias=pci:v00001AF4d*…"), as
// modprobe does to tell an alias of built-in code from an unknown one.
// Records other than aliases are skipped.
func ParseBuiltinModinfo(r io.Reader) (*Aliases, error) {
	a := &Aliases{byKey: make(map[string][]int)}
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20)
	s.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, 0); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for s.Scan() {
		key, value, ok := strings.Cut(s.Text(), "=")
		mod, field, dot := strings.Cut(key, ".")
		if !ok || !dot || field != "alias" || mod == "" || value == "" {
			continue
		}
		a.add(value, mod)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("modules.builtin.modinfo: %w", err)
	}
	return a, nil
}

// add appends the alias pattern of module.
func (a *Aliases) add(pattern, module string) {
	i := len(a.list)
	al := alias{pattern: normalizeAlias(pattern), module: NormalizeName(module)}
	a.list = append(a.list, al)
	if k := aliasKey(al.pattern); strings.ContainsAny(k, `*?[\`) {
		a.wild = append(a.wild, i)
	} else {
		a.byKey[k] = append(a.byKey[k], i)
	}
}

// aliasKey is the text before the first ":", or all of s.
func aliasKey(s string) string {
	k, _, _ := strings.Cut(s, ":")
	return k
}

// Match returns the modules whose aliases match name — a device's
// modalias ("pci:v00008086d00007010sv…") or an alias such as
// "crypto-crc32c" — each once, in modules.alias order. Matching follows
// kmod: "-" and "_" are the same outside bracket expressions, on both
// sides, and patterns are fnmatch(3) patterns without flags.
func (a *Aliases) Match(name string) []string {
	if a == nil {
		return nil
	}
	name = normalizeAlias(name)
	// A pattern whose key has no wildcard can only match names with the
	// same key: the key and the ":" after it are literal.
	cand := slices.Concat(a.byKey[aliasKey(name)], a.wild)
	slices.Sort(cand)
	var out []string
	for _, i := range cand {
		al := a.list[i]
		if globMatch(al.pattern, name) && !slices.Contains(out, al.module) {
			out = append(out, al.module)
		}
	}
	return out
}

// Len is the number of aliases parsed.
func (a *Aliases) Len() int {
	if a == nil {
		return 0
	}
	return len(a.list)
}

// NormalizeName spells a module name the way the kernel does: "-" and
// "_" are the same in module names, and the kernel uses "_"
// ("usb-storage" is usb_storage).
func NormalizeName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// normalizeAlias turns "-" into "_" outside bracket expressions, as kmod
// does on both sides before matching an alias.
func normalizeAlias(s string) string {
	b := []byte(s)
	inClass := false
	for i, c := range b {
		switch {
		case c == '[':
			inClass = true
		case c == ']':
			inClass = false
		case c == '-' && !inClass:
			b[i] = '_'
		}
	}
	return string(b)
}

// globMatch matches s against an fnmatch(3) pattern without flags, as
// modprobe matches aliases: "*" and "?" match any characters including
// "/", "[...]" is a class ("[!...]" or "[^...]" negated), and "\" makes
// the next character literal.
func globMatch(p, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '[':
				if sx < len(s) {
					ok, n := matchClass(p[px:], s[sx])
					if n == 0 { // no closing bracket: a literal "["
						ok, n = s[sx] == '[', 1
					}
					if ok {
						px += n
						sx++
						continue
					}
				}
			case '\\':
				lit, n := byte('\\'), 1
				if px+1 < len(p) {
					lit, n = p[px+1], 2
				}
				if sx < len(s) && s[sx] == lit {
					px += n
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if starPx >= 0 && starSx < len(s) {
			starSx++
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

// matchClass matches c against the bracket expression at the start of p and
// returns the expression's length, or 0 if it is not closed.
func matchClass(p string, c byte) (bool, int) {
	i := 1
	negate := i < len(p) && (p[i] == '!' || p[i] == '^')
	if negate {
		i++
	}
	matched := false
	for first := true; i < len(p); first = false {
		if p[i] == ']' && !first {
			return matched != negate, i + 1
		}
		lo := p[i]
		hi := lo
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi = p[i+2]
			i += 3
		} else {
			i++
		}
		if lo <= c && c <= hi {
			matched = true
		}
	}
	return false, 0
}
