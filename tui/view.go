package tui

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
)

var titles = map[screen]string{
	scHome: "Main menu", scDisks: "Disks", scImages: "Image", scImagePath: "Image path",
	scPassword: "Password", scPoint: "Backup point", scScope: "Whole disk or partition",
	scTarget: "Target", scTargetPath: "Target path", scLayout: "Layout", scConfirm: "Confirm",
	scProgress: "Working", scResult: "Result", scCloneSource: "Source", scBackupSource: "Source",
	scBackupDest: "Destination", scBackupFolder: "Destination folder", scBackupName: "File name",
	scCompression: "Compression", scBackupPw1: "Encryption", scBackupPw2: "Encryption",
	scSplit: "Split", scBackupSummary: "Summary", scNetwork: "Network", scNetManual: "Manual address",
	scPower: "Reboot / Power off", scBackupType: "Backup type", scChainPw: "Chain password",
}

func (m *Model) keysLine() string {
	switch {
	case m.help:
		return "Any key closes the help"
	case m.scr == scProgress && m.askStop:
		return "y stop   n go on"
	case m.scr == scProgress:
		return "Esc stop"
	case m.scr == scConfirm:
		return "Type the name, Enter confirm   Esc cancel"
	case m.scr == scResult:
		return "Enter main menu"
	case m.isText():
		return "Enter accept   Esc back   Backspace erase"
	case m.scr == scDisks:
		return "Up/Down scroll   r refresh   Esc back   ? help"
	case m.scr == scNetwork && m.o.Network != nil:
		return "Up/Down choose   d DHCP again   m manual address   r refresh   Esc back"
	case m.scr == scNetwork:
		return "r refresh   Esc back   ? help"
	case m.scr == scHome:
		return "Up/Down choose   Enter select   ? help"
	}
	return "Up/Down choose   Enter select   Esc back   ? help"
}

// View draws the screen: a title line, a rule, the body, any error or
// note, and the keys on the last line, exactly m.h lines of at most m.w
// columns.
func (m *Model) View() string {
	w, h := m.w, m.h
	title := "Lifeboat"
	if m.o.Version != "" {
		title += " " + m.o.Version
	}
	crumb := titles[m.scr]
	if m.flow != flowNone && m.scr != scHome {
		crumb = m.flow.String() + " > " + crumb
	}
	head := []string{m.st.title.Render(cut(title+" | "+crumb, w)), strings.Repeat("-", w)}
	avail := h - len(head) - 1
	var body []string
	if m.help {
		body = wrap(helpText, w)
	} else {
		body = m.body(w, avail)
	}
	var msgs []string
	if m.err != "" {
		msgs = append(msgs, "")
		for _, l := range wrap(m.err, w-2) {
			msgs = append(msgs, m.st.bad.Render("! "+l))
		}
	}
	if m.note != "" {
		msgs = append(msgs, "")
		msgs = append(msgs, wrap(m.note, w)...)
	}
	if len(body)+len(msgs) > avail {
		if len(msgs) > avail {
			msgs = msgs[:avail]
		}
		body = body[:max(avail-len(msgs), 0)]
	}
	lines := append(head, body...)
	lines = append(lines, msgs...)
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	lines = append(lines, cut(m.keysLine(), w))
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

const helpText = `Lifeboat puts your disks back from image files, copies disks, and makes backups.

Keys: Up and Down (or k and j) move, Enter chooses, Esc goes back one step, ? shows this help. Ctrl-C on the main menu leaves the program.

Nothing is written to any disk until a summary has shown what will be overwritten and you have typed the target's name (for example sdb). A wrong name writes nothing.

While an operation runs, Esc asks whether to stop it; the result then says what state the target is in.

Restore: image, then backup point, whole disk or one partition, target, layout, confirmation.
Clone: source disk or partition, target, layout, confirmation.
Backup: source, folder on another disk, backup type (when the folder holds backups of the same source), file name, compression, password (optional, asked twice), split size.
Shell opens a command line; type exit to come back.`

func (m *Model) listBody(intro string, rows int, after ...string) []string {
	var out []string
	if intro != "" {
		out = append(wrap(intro, m.w), "")
	}
	l := m.lists[m.scr]
	n := rows - len(out) - len(after)
	if l != nil {
		out = append(out, l.render(m.st, m.w, n)...)
	}
	if len(after) > 0 {
		out = append(out, "")
		for _, a := range after {
			out = append(out, wrap(a, m.w)...)
		}
	}
	return out
}

func (m *Model) inputBody(intro string, after ...string) []string {
	out := append(wrap(intro, m.w), "", m.in.render(m.w))
	for _, a := range after {
		out = append(out, "")
		out = append(out, wrap(a, m.w)...)
	}
	return out
}

func (m *Model) body(w, rows int) []string {
	switch m.scr {
	case scHome:
		return m.listBody("Choose what to do. No disk is written to until you have seen a summary and typed the target's name.", rows)
	case scDisks:
		lines := m.diskLines()
		if m.scroll > len(lines)-rows {
			m.scroll = max(len(lines)-rows, 0)
		}
		return lines[m.scroll:]
	case scImages:
		verb := "restore"
		if m.flow == flowCheck {
			verb = "check"
		}
		var after []string
		if len(m.lists[scImages].items) == 2 {
			after = append(after, "No images (*.lbi) were found on the disks. Attach the disk or stick that holds them and choose Look again, or type the path.")
		}
		return m.listBody("Pick the image to "+verb+":", rows, after...)
	case scImagePath:
		return m.inputBody("Type the path of the image (its first part, for split images) or an http:// URL, then press Enter:")
	case scPassword:
		return m.inputBody(m.image + " is encrypted. Type its password, then press Enter:")
	case scPoint:
		if m.info != nil && len(m.info.Chain) > 0 {
			return m.listBody("Backup points in the chain of "+m.image+", newest first:", rows,
				"Each point restores the whole state at its time; earlier points are read from the files beside it.")
		}
		return m.listBody("Backup points in "+m.image+":", rows,
			"This image holds a single backup point (a full backup, not part of a chain).")
	case scScope:
		return m.listBody("Restore the whole disk, or only one partition of it?", rows)
	case scTarget:
		intro := "Pick the disk to restore onto. Everything on it will be overwritten."
		switch {
		case m.flow == flowClone && m.srcPart:
			intro = "Pick the partition to copy " + m.source + " onto. Everything on it will be overwritten."
		case m.flow == flowClone:
			intro = "Pick the disk to copy " + m.source + " onto. Everything on it will be overwritten."
		case m.partition != 0 || m.stream() != nil && m.stream().Kind == images.KindPartition:
			intro = "Pick the partition to restore onto, or a disk to add a new partition in its free space."
		}
		return m.listBody(intro, rows, "You will see a summary and type the target's name before anything is written.")
	case scTargetPath:
		return m.inputBody("Type the target: a device such as /dev/sdb, or a file (a missing file is created):")
	case scLayout:
		return m.listBody("How should the partitions be laid out on "+m.target+"?", rows,
			"Partition starts are aligned to 1 MiB. Partitions are never made smaller than they are in the source.")
	case scConfirm:
		return m.confirmBody(w)
	case scProgress:
		return m.progressBody(w)
	case scResult:
		var out []string
		t := m.result.title
		if m.result.ok {
			out = append(out, m.st.good.Render(t))
		} else {
			out = append(out, m.st.bad.Render(t))
		}
		out = append(out, "")
		for _, l := range m.result.lines {
			out = append(out, wrap(l, w)...)
		}
		return out
	case scCloneSource:
		return m.listBody("Pick what to clone: a whole disk, or one partition.", rows)
	case scBackupSource:
		return m.listBody("Pick what to back up: a whole disk, or one partition.", rows)
	case scBackupDest:
		after := "Put the image on another disk than the one you back up."
		if len(m.lists[scBackupDest].items) == 1 {
			after = "No writable filesystem was found on another disk. Attach a USB disk, or type a folder."
		}
		return m.listBody("Pick the folder the image goes into:", rows, after)
	case scBackupFolder:
		return m.inputBody("Type the folder the image goes into:")
	case scBackupType:
		b := m.base
		when := b.Created.UTC().Format("2006-01-02 15:04")
		kind := images.PointFull
		if b.Meta.Point != nil {
			kind = b.Meta.Point.Kind
		}
		return m.listBody(fmt.Sprintf("%s already holds backups of %s. The newest is %s (%s, %s backup).", m.dest, m.source, filepath.Base(b.Image), when, kind), rows,
			"Incremental and differential backups build on it and take its compression and encryption; restoring one needs the earlier points beside it.")
	case scChainPw:
		return m.inputBody("The backups in " + m.dest + " are encrypted; the new point is encrypted the same way. Type their password, then press Enter:")
	case scBackupName:
		return m.inputBody("File name of the image in "+m.dest+":", "Split images get parts named NAME.002.lbi and so on beside it.")
	case scCompression:
		return m.listBody("Compression:", rows)
	case scBackupPw1:
		return m.inputBody("Password to encrypt the image, or just Enter for no encryption:",
			"Without the password nobody can restore the image, you neither: keep it safe.")
	case scBackupPw2:
		return m.inputBody("Type the password again:")
	case scSplit:
		return m.listBody("Split the image into parts?", rows, "FAT32 sticks cannot hold files of 4 GiB or more.")
	case scBackupSummary:
		enc := "not encrypted"
		if len(m.bpw) > 0 {
			enc = "encrypted (AES-256-GCM)"
		}
		split := "not split"
		if m.split > 0 {
			split = "split into parts of " + engine.HumanBytes(m.split)
		}
		what := "disk"
		if m.srcPart {
			what = "partition"
		}
		out := []string{
			cut(fmt.Sprintf("  Back up  %s (%s)", m.source, what), w),
			cut(fmt.Sprintf("  Into     %s", filepath.Join(m.dest, m.name)), w),
		}
		opts := fmt.Sprintf("compression %s, %s, %s", m.level, enc, split)
		switch {
		case m.chained():
			out = append(out, cut(fmt.Sprintf("  Type     %s, in the chain of %s", m.btype, filepath.Base(m.base.Image)), w))
			opts = "compression and encryption as the chain, " + split
		case m.base != nil:
			out = append(out, cut("  Type     full backup (new chain)", w))
		}
		n := len(out)
		out = append(out, indent(wrap(opts, w-11), "           ")...)
		out[n] = "  Options" + out[n][9:]
		out = append(out, "")
		out = append(out, wrap("The source is only read. The image appears under its name only when it is complete.", w)...)
		return append(append(out, ""), m.lists[scBackupSummary].render(m.st, w, 1)...)
	case scNetwork:
		intro := "Network interfaces:"
		if len(m.ifaces) == 0 {
			intro = "No network interfaces were found."
		}
		after := "d asks for an address by DHCP again, m sets one by hand."
		if m.o.Network == nil {
			after = "Read-only: on a running system the network belongs to the system's own network manager."
		}
		return m.listBody(intro, rows, after)
	case scNetManual:
		return m.inputBody("Address for " + m.iface + " as ADDRESS/PREFIX, optionally followed by the gateway (192.168.1.20/24 192.168.1.1):")
	case scPower:
		return m.listBody("Reboot or power off the machine?", rows, "Remove the rescue media first to boot the restored system.")
	}
	return nil
}

func (m *Model) diskLines() []string {
	var out []string
	if len(m.disks) == 0 {
		return []string{"No disks found."}
	}
	for _, d := range m.disks {
		out = append(out, cut(diskLine(d), m.w))
		if d.FS != nil {
			out = append(out, cut("         whole disk: "+fsText(d.FS), m.w))
		}
		if d.Error != "" {
			out = append(out, indent(wrap("cannot read: "+d.Error, m.w-9), "         ")...)
		}
		for _, p := range d.Partitions {
			l := fmt.Sprintf("  %-9s %9s  %s", p.Name, engine.HumanBytes(p.Size), fsText(p.FS))
			if p.Label != "" {
				l += "  name " + p.Label
			}
			out = append(out, cut(l, m.w))
		}
	}
	return out
}

func (m *Model) confirmBody(w int) []string {
	p := m.plan
	var out []string
	verb := "Restore"
	src := p.Image
	if m.flow == flowClone {
		verb = "Clone"
	}
	mode := "only the blocks the filesystems use"
	if m.flow == flowClone && m.sbs {
		mode = "every sector (sector by sector)"
	}
	if s := m.stream(); m.flow == flowRestore && s != nil && s.Mode == images.ModeAllSectors {
		mode = "every sector (the image was made sector by sector)"
	}
	size := engine.HumanBytes(p.TargetSize)
	if p.Create {
		size = "a new file"
	}
	out = append(out, "Check what will happen before anything is written:", "")
	srcSize := p.Bytes
	if st := m.stream(); m.flow == flowRestore && st != nil && m.partition == 0 {
		srcSize = st.Size
	}
	out = append(out, cut(fmt.Sprintf("  %-8s %s: %s, %s", verb, src, p.What, engine.HumanBytes(srcSize)), w))
	out = append(out, cut(fmt.Sprintf("  %-8s %s (%s)", "Onto", p.Target, size), w))
	out = append(out, cut(fmt.Sprintf("  %-8s %s", "Copies", mode), w))
	if p.Layout != nil {
		out = append(out, cut(fmt.Sprintf("  %-8s %s, starts aligned to 1 MiB, %s table", "Layout", layoutWord(m.mode), p.Layout.Table.Type), w))
		for _, n := range p.Layout.Notes {
			out = append(out, indent(wrap(n, w-11), "           ")...)
		}
	}
	// Before/after bars: the source's layout and what the target gets.
	if len(p.Before) > 0 && m.partition == 0 {
		bw := w - 12
		var before, after []seg
		for _, q := range p.Before {
			before = append(before, seg{q.Number, q.Start, q.Size})
			srcSize = max(srcSize, q.Start+q.Size)
		}
		total := p.TargetSize
		if p.Layout != nil {
			for _, mv := range p.Layout.Moves {
				after = append(after, seg{mv.Number, mv.DstStart, mv.DstSize})
			}
			total = max(total, p.Layout.DiskSize)
		} else {
			after = before
		}
		if total <= 0 {
			total = srcSize
		}
		scale := max(srcSize, total)
		out = append(out, "", "  Source  "+bar(before, scale, int(int64(bw)*srcSize/scale)))
		out = append(out, "  After   "+bar(after, scale, int(int64(bw)*total/scale)))
		if len(p.Before) <= 4 {
			for _, q := range p.Before {
				l := fmt.Sprintf("          %d = %s", q.Number, engine.HumanBytes(q.Size))
				for _, a := range after {
					if a.n == q.Number && a.size != q.Size {
						l += " -> " + engine.HumanBytes(a.size)
					}
				}
				if q.FS != nil {
					l += fmt.Sprintf("  %s %q", q.FS.Type, q.FS.Label)
				}
				out = append(out, cut(l, w))
			}
		}
	}
	out = append(out, "")
	if len(p.Overwrites) == 0 {
		out = append(out, cut("  "+p.Target+" holds nothing recognisable now (blank or unknown data).", w))
	} else {
		out = append(out, cut("  Now on "+p.Target+", to be overwritten:", w))
		for i, o := range p.Overwrites {
			if i == 4 && len(p.Overwrites) > 5 {
				out = append(out, fmt.Sprintf("    ... and %d more", len(p.Overwrites)-4))
				break
			}
			out = append(out, cut("    "+o, w))
		}
	}
	out = append(out, "", fmt.Sprintf("Type %s and press Enter to write; Esc cancels.", confirmName(p.Target)), m.in.render(w))
	return out
}

func layoutWord(md layout.Mode) string {
	switch md {
	case layout.Fill:
		return "fill the disk"
	case layout.Manual:
		return "sizes given"
	}
	return "keep the sizes"
}

func (m *Model) progressBody(w int) []string {
	s := m.status
	out := append(wrap(m.opTitle, w), "")
	for _, f := range m.stages {
		if f.Stage != s.Stage || !s.Final {
			out = append(out, fmt.Sprintf("  done: %s, %s in %s", f.Stage, engine.HumanBytes(f.Done), clock(f.Elapsed)))
		}
	}
	if len(m.stages) > 0 {
		out = append(out, "")
	}
	if s.Stage == 0 {
		out = append(out, "  starting ...")
		return m.stopQuestion(out, w)
	}
	pct := 0.0
	if s.Total > 0 {
		pct = float64(s.Done) * 100 / float64(s.Total)
	}
	bw := w - 12
	filled := int(float64(bw) * pct / 100)
	out = append(out,
		fmt.Sprintf("  Stage    %s", s.Stage),
		fmt.Sprintf("  [%s%s] %5.1f%%", strings.Repeat("#", filled), strings.Repeat(".", bw-filled), pct),
		fmt.Sprintf("  Done     %s of %s", engine.HumanBytes(s.Done), engine.HumanBytes(s.Total)),
		fmt.Sprintf("  Speed    %.1f MB/s", s.Rate/1e6),
	)
	eta := "-"
	if s.Rate > 0 && s.Total > s.Done {
		eta = clock(time.Duration(float64(s.Total-s.Done) / s.Rate * float64(time.Second)))
	}
	out = append(out, fmt.Sprintf("  Elapsed  %s   ETA %s", clock(s.Elapsed), eta))
	return m.stopQuestion(out, w)
}

func (m *Model) stopQuestion(out []string, w int) []string {
	if !m.askStop {
		return out
	}
	q := "Stop now? Nothing has been written yet."
	switch {
	case m.flow == flowCheck:
		q = "Stop the check?"
	case m.flow == flowBackup:
		q = "Stop the backup? The unfinished image is removed."
	case m.confirmed:
		q = "Stop now? The target will be left incomplete and must be written again."
	}
	out = append(out, "")
	return append(out, wrap(q+" Press y to stop, n to go on.", w)...)
}
