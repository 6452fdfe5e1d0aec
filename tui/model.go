package tui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// screen is one of the router's own pages; the wizards' pages are steps.
type screen int

const (
	scHome screen = iota
	scDisks
	scNetwork
	scNetManual
	scPower
)

var screenTitles = map[screen]string{
	scHome: "Main menu", scDisks: "Disks", scNetwork: "Network", scNetManual: "Manual address", scPower: "Reboot / Power off",
}

// Model is the UI's state. Create it with New; Run wraps it in a program.
//
// It is a router: it owns the main menu, the disk list, the network and
// power screens, and hands everything else to the open wizard (restore.go,
// clone.go, backup.go, check.go) and to the operation that wizard started
// (operation.go: confirmation, progress, result).
type Model struct {
	*ui
	scr   screen
	stack []screen
	help  bool
	// showLog shows the log over the current screen.
	showLog   bool
	logScroll int
	lists     map[screen]*list
	in        input // the manual address
	scroll    int   // the disk list
	ifaces    []Iface
	iface     string

	wiz    wizard     // the open wizard, or nil
	op     *operation // its running or finished operation, or nil
	action Action
}

// New returns the UI's model. ctx bounds every operation it starts.
func New(ctx context.Context, o Options) *Model {
	o.defaults()
	m := &Model{ui: &ui{o: o, ctx: ctx, w: o.Width, h: o.Height, st: newStyles(o.Colour), now: time.Now}, lists: map[screen]*list{}}
	m.launch = m.start
	return m
}

// Action is what the user chose at the end (quit, reboot, power off).
func (m *Model) Action() Action { return m.action }

func (m *Model) Init() tea.Cmd {
	m.home()
	return nil
}

func (m *Model) home() {
	m.scr, m.stack, m.wiz, m.op, m.err, m.note = scHome, nil, nil, nil, "", ""
	quit := "Quit"
	if m.o.Rescue {
		quit = "Exit to the lifeboat> prompt"
	}
	m.lists[scHome] = newList(
		item{label: "Restore      put an image back onto a disk or partition", key: "restore"},
		item{label: "Clone        copy a disk or partition straight to another", key: "clone"},
		item{label: "Backup       save a disk or partition into an image file", key: "backup"},
		item{label: "Check image  read every byte of an image and verify it", key: "check"},
		item{label: "Explore      get files and folders back from an image", key: "explore"},
		item{label: "Disks        list disks, partitions and filesystems", key: "disks"},
		item{label: "Network      interfaces and addresses", key: "network"},
		item{label: "Log          what ran, when, and every warning (l anywhere)", key: "log"},
		item{label: "Shell        a command line (type exit to come back)", key: "shell"},
		item{label: "Reboot / Power off", key: "power"},
		item{label: quit, key: "quit"},
	)
}

// push opens one of the router's screens; Esc comes back to the current one.
func (m *Model) push(s screen) {
	m.stack = append(m.stack, m.scr)
	m.scr, m.err, m.note, m.scroll = s, "", "", 0
}

func (m *Model) back() {
	if m.wiz != nil {
		if !m.wiz.nav().back(m.ui) {
			m.home()
		}
		return
	}
	m.err, m.note = "", ""
	if len(m.stack) == 0 {
		m.home()
		return
	}
	m.scr = m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	if m.scr == scHome {
		m.home()
	}
}

type shellMsg struct{ err error }

func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		// A serial console reports 0×0: keep the default.
		if msg.Width > 0 && msg.Height > 0 {
			m.w, m.h = msg.Width, msg.Height
		}
		return m, nil
	case progressMsg, writtenMsg, confirmMsg, doneMsg:
		return m, m.opMsg(msg)
	case shellMsg:
		if msg.err != nil {
			m.err = "shell: " + msg.err.Error()
		}
		return m, nil
	case netMsg:
		m.gotNet(msg)
		return m, nil
	case tea.KeyMsg:
		return m, m.key(msg)
	}
	if m.wiz != nil {
		return m, m.wiz.msg(msg)
	}
	return m, nil
}

// typing says whether the current screen types text (so '?' is a letter).
func (m *Model) typing() bool {
	switch {
	case m.op != nil:
		return m.op.confirming()
	case m.wiz != nil:
		return textSteps[m.wiz.nav().cur]
	}
	return m.scr == scNetManual
}

func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	if m.help {
		m.help = false
		return nil
	}
	if m.showLog {
		m.logKey(k)
		return nil
	}
	if k.String() == "?" && !m.typing() && (m.op == nil || m.op.res != nil) {
		m.help = true
		return nil
	}
	if k.String() == "l" && !m.typing() && m.scr != scNetManual && (m.op == nil || !m.op.askStop) {
		m.openLog()
		return nil
	}
	if m.op != nil {
		return m.opKey(k)
	}
	switch k.String() {
	case "esc":
		m.back()
		return nil
	case "ctrl+c":
		if m.wiz == nil && m.scr == scHome {
			return m.quit(ActionQuit)
		}
		m.home()
		return nil
	}
	m.err = ""
	if m.wiz != nil {
		return m.wiz.key(k)
	}
	switch m.scr {
	case scDisks:
		m.disksKey(k)
		return nil
	case scNetwork:
		return m.networkKey(k)
	case scNetManual:
		return m.manualKey(k)
	}
	it, ok := m.lists[m.scr].update(k)
	if !ok {
		return nil
	}
	switch m.scr {
	case scHome:
		return m.homePick(it.key)
	case scPower:
		return m.powerPick(it.key)
	}
	return nil
}

func (m *Model) quit(a Action) tea.Cmd {
	m.action = a
	return tea.Quit
}

func (m *Model) homePick(key string) tea.Cmd {
	switch key {
	case "restore":
		w, cmd := newRestore(m.ui)
		m.wiz = w
		return cmd
	case "check":
		w, cmd := newCheck(m.ui)
		m.wiz = w
		return cmd
	case "explore":
		w, cmd := newExplore(m.ui)
		m.wiz = w
		return cmd
	case "clone":
		m.wiz = newClone(m.ui)
	case "backup":
		m.wiz = newBackup(m.ui)
	case "disks":
		m.push(scDisks)
		m.loadDisks()
	case "network":
		m.push(scNetwork)
		m.loadIfaces()
	case "log":
		m.openLog()
	case "shell":
		return tea.ExecProcess(m.o.Shell(), func(err error) tea.Msg { return shellMsg{err} })
	case "power":
		m.push(scPower)
		m.lists[scPower] = newList(item{label: "Reboot", key: "reboot"}, item{label: "Power off", key: "poweroff"})
		if !m.o.Rescue {
			m.note = "On a running system, use the system's own menu to reboot or power off."
		}
	case "quit":
		return m.quit(ActionQuit)
	}
	return nil
}

func (m *Model) powerPick(key string) tea.Cmd {
	if !m.o.Rescue {
		m.err = "Lifeboat does not reboot or power off a running system; use the system's own menu. Esc goes back."
		return nil
	}
	if key == "reboot" {
		return m.quit(ActionReboot)
	}
	return m.quit(ActionPowerOff)
}
