package tui

import (
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// The log: what ran in this session and when, how each operation ended,
// and every warning and refusal. The main menu's Log shows it, and l from
// any screen that does not type text.

type logEntry struct {
	at   time.Time
	warn bool
	text string
}

// logf records a line; only the UI's goroutine calls it.
func (u *ui) logf(warn bool, format string, args ...any) {
	u.log = append(u.log, logEntry{at: u.now(), warn: warn, text: fmt.Sprintf(format, args...)})
}

// openLog shows the log over the current screen, scrolled to its end.
func (m *Model) openLog() {
	m.showLog, m.logScroll = true, len(m.log)
}

func (m *Model) logKey(k tea.KeyMsg) {
	if !scrollKey(&m.logScroll, k, m.h-6) {
		m.showLog = false
	}
}

func (m *Model) logBody(rows int) []string {
	var out []string
	for _, e := range m.log {
		mark := ""
		if e.warn {
			mark = "! "
		}
		for i, l := range wrap(mark+e.text, m.w-10) {
			if i == 0 {
				out = append(out, e.at.Format("15:04:05")+"  "+l)
			} else {
				out = append(out, "          "+l)
			}
		}
	}
	if len(out) == 0 {
		return []string{"Nothing has run yet."}
	}
	if m.logScroll > len(out)-rows {
		m.logScroll = max(len(out)-rows, 0)
	}
	return out[m.logScroll:]
}
