package tui

import (
	"strings"
)

// View draws the screen: a title line, a rule, the body, any error or
// note, and the keys on the last line, exactly m.h lines of at most m.w
// columns.
func (m *Model) View() string {
	w, h := m.w, m.h
	title := "Lifeboat"
	if m.o.Version != "" {
		title += " " + m.o.Version
	}
	head := []string{m.st.title.Render(cut(title+" | "+m.crumb(), w)), strings.Repeat("-", w)}
	avail := h - len(head) - 1
	var body []string
	switch {
	case m.help:
		body = wrap(helpText, w)
	case m.showLog:
		body = m.logBody(avail)
	default:
		body = m.body(avail)
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

// crumb names the screen: "Main menu", "Restore > Target".
func (m *Model) crumb() string {
	switch {
	case m.showLog:
		return "Log"
	case m.op != nil:
		return m.wiz.flow().String() + " > " + m.op.title()
	case m.wiz != nil:
		return m.wiz.flow().String() + " > " + stepTitles[m.wiz.nav().cur]
	}
	return screenTitles[m.scr]
}

func (m *Model) keysLine() string {
	switch {
	case m.help:
		return "Any key closes the help"
	case m.showLog:
		return "Up/Down scroll   any other key closes the log"
	case m.op != nil:
		return m.op.keys()
	case m.typing():
		return "Enter accept   Esc back   Backspace erase"
	case m.wiz != nil:
	case m.scr == scDisks:
		return "Up/Down scroll   r refresh   Esc back   ? help"
	case m.scr == scNetwork && m.o.Network != nil:
		return "Up/Down choose   d DHCP again   m manual address   r refresh   Esc back"
	case m.scr == scNetwork:
		return "r refresh   Esc back   ? help"
	case m.scr == scHome:
		return "Up/Down choose   Enter select   l log   ? help"
	}
	return "Up/Down choose   Enter select   Esc back   ? help"
}

func (m *Model) body(rows int) []string {
	switch {
	case m.op != nil:
		return m.op.body(m.w)
	case m.wiz != nil:
		return m.wiz.body(rows)
	}
	switch m.scr {
	case scHome:
		return m.listBody(m.lists[scHome], "Choose what to do. No disk is written to until you have seen a summary and typed the target's name.", rows)
	case scDisks:
		return m.disksBody(rows)
	case scNetwork:
		return m.networkBody(rows)
	case scNetManual:
		return m.inputBody(&m.in, "Address for "+m.iface+" as ADDRESS/PREFIX, optionally followed by the gateway (192.168.1.20/24 192.168.1.1):")
	case scPower:
		return m.listBody(m.lists[scPower], "Reboot or power off the machine?", rows, "Remove the rescue media first to boot the restored system.")
	}
	return nil
}

const helpText = `Lifeboat puts your disks back from image files, copies disks, and makes backups.

Keys: Up and Down (or k and j) move, Enter chooses, Esc goes back one step, ? shows this help. Ctrl-C on the main menu leaves the program.

Nothing is written to any disk until a summary has shown what will be overwritten and you have typed the target's name (for example sdb). A wrong name writes nothing.

While an operation runs, Esc asks whether to stop it; the result then says what state the target is in. l shows the log: what ran, when, and every warning.

Restore: image, backup point, whole disk or one partition, target, layout (keep, fill or sizes by hand; new IDs; delta onto an older copy), confirmation.
Clone: source disk, partition or the running system, target, layout (or sector by sector; new IDs), confirmation.
Backup: source, folder on another disk, backup type (when the folder holds backups of the same source), file name, compression, password (optional, asked twice) and cipher, split size.
A refusal or a wrong name goes back to the step where the choice can be changed; the other choices are kept.
Shell opens a command line; type exit to come back.`
