// Package opt names the options of Lifeboat's operations, so an error can
// carry its fix as data: which option to use, with which value, and the
// advice around it. Each front end words the fix in its own terms: the
// CLI as flags ("--layout fit"), the TUI as the screen where that choice
// is made. The engine, engine/layout and mkmedia build Fix values; they
// never spell a flag.
//
// The smallest use, in a front end:
//
//	var le *layout.Error
//	if errors.As(err, &le) && le.Fix.Names(opt.Partition) {
//		// offer to restore one partition
//	}
//	fmt.Println(le.Fix.Format(func(u opt.Use) string { return "the " + string(u.Option) + " setting" }))
package opt

import "strings"

// Option is one option of an operation, named as the engine's options
// structs know it. Its value is the word the CLI's flag is made from.
type Option string

// The options errors name. Each says which options struct field it is.
const (
	Partition        Option = "partition"         // RestoreOptions.Partition: one partition of the image
	Layout           Option = "layout"            // LayoutOptions.Mode: keep, fill, manual
	Size             Option = "size"              // LayoutOptions.Sizes (N=SIZE); mkmedia USBOptions.Size
	Grow             Option = "grow"              // LayoutOptions.Grow
	Table            Option = "table"             // LayoutOptions.Table: gpt, mbr
	NewIDs           Option = "new-ids"           // LayoutOptions.NewIDs
	Delta            Option = "delta"             // RestoreOptions.Delta
	Overwrite        Option = "overwrite"         // output options: replace an existing file
	RequireEncrypted Option = "require-encrypted" // refuse an image that is not encrypted
	PasswordFile     Option = "password-file"     // where the password is read from
	ChainDir         Option = "chain-dir"         // the folder of a chain's earlier points
	Rescue           Option = "rescue"            // BackupOptions.Rescue: store unreadable sectors as zeros
	Incremental      Option = "incremental"       // BackupOptions: an incremental point
	Differential     Option = "differential"      // BackupOptions: a differential point
	OS               Option = "os"                // clone system: the partition that holds the system
	Append           Option = "append"            // mkmedia: kernel command line additions
	Output           Option = "output"            // the file to write (an image, an ISO, a stick image)
)

// Use is one option with the value to give it ("fit", "3=20G"); Value
// is "" for a switch, and a placeholder such as "N" where the user picks.
type Use struct {
	Option Option
	Value  string
}

// Fix is what the user can do about an error, as data. Text is the
// advice in words; each "{}" in it stands for the next entry of Uses,
// worded by the front end. A zero Fix means nothing the user chooses
// helps (or the error says it in its reason).
type Fix struct {
	Text string
	Uses []Use
}

// Text is a Fix that names no option.
func Text(s string) Fix { return Fix{Text: s} }

// With is a Fix whose text names the given options at its "{}" marks.
func With(text string, uses ...Use) Fix { return Fix{Text: text, Uses: uses} }

// And is f followed by g, as one fix ("f; g").
func (f Fix) And(g Fix) Fix {
	switch {
	case f.IsZero():
		return g
	case g.IsZero():
		return f
	}
	return Fix{Text: f.Text + "; " + g.Text, Uses: append(append([]Use(nil), f.Uses...), g.Uses...)}
}

// IsZero reports whether f says nothing.
func (f Fix) IsZero() bool { return f.Text == "" && len(f.Uses) == 0 }

// Names reports whether f names the option o.
func (f Fix) Names(o Option) bool {
	for _, u := range f.Uses {
		if u.Option == o {
			return true
		}
	}
	return false
}

// Format words f, each "{}" replaced by word applied to the next Use.
func (f Fix) Format(word func(Use) string) string {
	var b strings.Builder
	rest, i := f.Text, 0
	for {
		j := strings.Index(rest, "{}")
		if j < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:j])
		if i < len(f.Uses) {
			b.WriteString(word(f.Uses[i]))
			i++
		} else {
			b.WriteString("{}") // more marks than options: literal text
		}
		rest = rest[j+2:]
	}
	return b.String()
}

// String words f with each option as a command-line flag. It exists so
// that Error() methods read as they did before fixes were data; front ends
// should call Format with their own wording (the CLI's is in
// internal/cli).
func (f Fix) String() string { return f.Format(Flag) }

// Flag words u as a flag: "--layout fit", "--size 3=20G", "--new-ids";
// Output as its short form, "-o FILE", as the messages have always said.
func Flag(u Use) string {
	f := "--" + string(u.Option)
	if u.Option == Output {
		f = "-o"
	}
	if u.Value == "" {
		return f
	}
	return f + " " + u.Value
}
