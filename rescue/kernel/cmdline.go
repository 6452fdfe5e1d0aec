package kernel

import "strings"

// SplitCmdline splits a kernel command line as the kernel does
// (next_arg): at white space outside double quotes, the quotes dropped.
// The rescue environment reads its lifeboat.* parameters with it, and the
// PXE server uses it to hand parameters one by one to GRUB, which quotes
// a parameter with a space again when it builds the command line.
func SplitCmdline(s string) []string {
	var out []string
	var b strings.Builder
	inQ, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQ, any = !inQ, true
		case (r == ' ' || r == '\t' || r == '\n') && !inQ:
			if any {
				out = append(out, b.String())
				b.Reset()
				any = false
			}
		default:
			b.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, b.String())
	}
	return out
}
