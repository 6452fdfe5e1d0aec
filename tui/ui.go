package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// flow is the wizard a screen belongs to.
type flow int

const (
	flowNone flow = iota
	flowRestore
	flowClone
	flowBackup
	flowCheck
	flowExplore
)

func (f flow) String() string {
	return [...]string{"", "Restore", "Clone", "Backup", "Check image", "Explore image"}[f]
}

type styles struct {
	sel, dim, title, bad, good lipgloss.Style
}

func newStyles(colour bool) styles {
	r := lipgloss.NewRenderer(nil)
	if colour {
		r.SetColorProfile(termenv.ANSI)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return styles{
		sel:   r.NewStyle().Reverse(true),
		dim:   r.NewStyle().Faint(true),
		title: r.NewStyle().Bold(true),
		bad:   r.NewStyle().Bold(true).Foreground(lipgloss.Color("1")),
		good:  r.NewStyle().Bold(true).Foreground(lipgloss.Color("2")),
	}
}

// ui is what the router, the wizards and the shared components have in
// common: the options, the screen size, the message lines under the
// current screen, and the disks as last read. Only the UI's goroutine
// touches it.
type ui struct {
	o    Options
	ctx  context.Context
	w, h int
	st   styles
	err  string // shown under the current screen until the next key
	note string // a neutral line, e.g. "Opening image…"

	disks []engine.DiskInfo
	// launch starts a wizard's operation (the router's start).
	launch func(job) tea.Cmd
	log    []logEntry
	now    func() time.Time
}

func (u *ui) loadDisks() {
	ds, err := u.o.Backend.Disks()
	u.disks = ds
	if err != nil {
		u.err = err.Error()
	}
}

// isPartition says whether path is a partition in the disk list.
func (u *ui) isPartition(path string) bool {
	for _, d := range u.disks {
		for _, p := range d.Partitions {
			if p.Path == path {
				return true
			}
		}
	}
	return false
}

// deviceSize is the size of a disk or partition as the disk list has it,
// 0 if unknown.
func (u *ui) deviceSize(path string) int64 {
	for _, d := range u.disks {
		if d.Path == path {
			return d.Size
		}
		for _, p := range d.Partitions {
			if p.Path == path {
				return p.Size
			}
		}
	}
	return 0
}

// listBody draws an intro, a list and lines after it within rows.
func (u *ui) listBody(l *list, intro string, rows int, after ...string) []string {
	var out []string
	if intro != "" {
		out = append(wrap(intro, u.w), "")
	}
	n := rows - len(out) - len(after)
	if l != nil {
		out = append(out, l.render(u.st, u.w, n)...)
	}
	if len(after) > 0 {
		out = append(out, "")
		for _, a := range after {
			out = append(out, wrap(a, u.w)...)
		}
	}
	return out
}

// inputBody draws an intro, a text field and lines after it.
func (u *ui) inputBody(in *input, intro string, after ...string) []string {
	out := append(wrap(intro, u.w), "", in.render(u.w))
	for _, a := range after {
		out = append(out, "")
		out = append(out, wrap(a, u.w)...)
	}
	return out
}

// step is one page of a wizard. The wizards share the enumeration so the
// shared components (image and device pickers) can own their steps.
type step int

const (
	stImage         step = iota + 1 // pick an image (restore, check)
	stImagePath                     // type an image path or URL
	stPassword                      // an encrypted image's password
	stPoint                         // the backup point
	stScope                         // whole disk or one partition
	stSource                        // the disk or partition cloned or backed up
	stTarget                        // the disk or partition written to
	stDevicePath                    // a typed source or target
	stLayout                        // layout / sector-by-sector
	stSizes                         // manual partition sizes
	stBackupDest                    // the folder a backup goes into
	stBackupFolder                  // a typed folder
	stBackupType                    // full, incremental or differential
	stChainPw                       // an encrypted chain's password
	stBackupName                    // the image's file name
	stCompression                   // the backup's compression
	stBackupPw1                     // the backup's password
	stBackupPw2                     // the same again
	stCipher                        // the cipher, with a password
	stSplit                         // split size
	stSplitSize                     // a typed split size
	stBackupSummary                 // what the backup will do
	stExplorePart                   // the partition explored
	stBrowse                        // its files and folders
	stExtractDest                   // the folder files are copied into
	stExtractFolder                 // a typed folder
)

var stepTitles = map[step]string{
	stImage: "Image", stImagePath: "Image path", stPassword: "Password", stPoint: "Backup point",
	stScope: "Whole disk or partition", stSource: "Source", stTarget: "Target", stDevicePath: "Target path",
	stLayout: "Layout", stSizes: "Partition sizes", stBackupDest: "Destination",
	stBackupFolder: "Destination folder", stBackupType: "Backup type", stChainPw: "Chain password",
	stBackupName: "File name", stCompression: "Compression", stBackupPw1: "Encryption", stBackupPw2: "Encryption",
	stCipher: "Cipher", stSplit: "Split", stSplitSize: "Split size", stBackupSummary: "Summary",
	stExplorePart: "Partition", stBrowse: "Files", stExtractDest: "Copy into", stExtractFolder: "Folder",
}

// textSteps type text, so '?' is a letter there.
var textSteps = map[step]bool{
	stImagePath: true, stPassword: true, stDevicePath: true, stBackupFolder: true, stBackupName: true,
	stBackupPw1: true, stBackupPw2: true, stChainPw: true, stSizes: true, stSplitSize: true, stExtractFolder: true,
}

// steps is a wizard's way through its pages: the current one, the ones
// Esc goes back to, and each page's list, kept so a page returned to
// keeps its cursor.
type steps struct {
	cur   step
	stack []step
	lists map[step]*list
	in    input
}

// push opens a step; Esc comes back to the current one.
func (s *steps) push(u *ui, st step) {
	if s.cur != 0 {
		s.stack = append(s.stack, s.cur)
	}
	s.cur = st
	u.err, u.note = "", ""
}

// back returns to the previous step; false when there is none (the
// wizard ends).
func (s *steps) back(u *ui) bool {
	u.err, u.note = "", ""
	if len(s.stack) == 0 {
		return false
	}
	s.cur = s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	return true
}

// backTo returns to st if it was passed on the way here, keeping its list
// (and the cursor on the choice made there); false if it was not.
func (s *steps) backTo(st step) bool {
	for i := len(s.stack) - 1; i >= 0; i-- {
		if s.stack[i] == st {
			s.cur, s.stack = st, s.stack[:i]
			return true
		}
	}
	return s.cur == st
}

// textStep opens a step that types text.
func (s *steps) textStep(u *ui, st step, value string, mask bool) {
	s.push(u, st)
	s.in = input{mask: mask}
	s.in.set(value)
}

func (s *steps) list() *list { return s.lists[s.cur] }

// setList gives a step its list. A step shown again with the same items
// keeps its cursor on the choice made before.
func (s *steps) setList(st step, l *list) {
	if s.lists == nil {
		s.lists = map[step]*list{}
	}
	if old := s.lists[st]; old != nil && sameKeys(old, l) {
		if _, ok := old.selected(); ok {
			l.cur = old.cur
		}
	}
	s.lists[st] = l
}

func sameKeys(a, b *list) bool {
	if len(a.items) != len(b.items) {
		return false
	}
	for i := range a.items {
		if a.items[i].key != b.items[i].key || a.items[i].disabled != b.items[i].disabled {
			return false
		}
	}
	return true
}

// wizard is one verb's steps (restore, clone, backup, check): its own
// choices, keys and screens. The router gives it the keys of its steps
// (Esc and Ctrl-C excepted) and the background results it asked for, and
// runs the operation it launches.
type wizard interface {
	flow() flow
	nav() *steps
	// key acts on a key on the current step.
	key(k tea.KeyMsg) tea.Cmd
	// msg takes a background result of the wizard's own.
	msg(msg tea.Msg) tea.Cmd
	// body draws the current step in rows lines.
	body(rows int) []string
	// recover goes back, after the operation failed with err before
	// writing anything, to the step where what was refused can be chosen
	// again, every other choice kept; false leaves the result screen.
	recover(err error) bool
}

// listKey moves a step's list and reports the item Enter picked.
func listKey(s *steps, k tea.KeyMsg) (item, bool) {
	l := s.list()
	if l == nil {
		return item{}, false
	}
	return l.update(k)
}
