package tui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// screen is one page of the UI.
type screen int

const (
	scHome screen = iota
	scDisks
	scImages      // pick an image (restore, check)
	scImagePath   // type an image path or URL
	scPassword    // an encrypted image's password
	scPoint       // the backup point
	scScope       // whole disk or one partition
	scTarget      // the disk or partition written to
	scTargetPath  // a typed target
	scLayout      // layout / sector-by-sector
	scConfirm     // summary + typed name
	scProgress    // a running operation
	scResult      // its outcome
	scCloneSource // the disk or partition cloned
	scBackupSource
	scBackupDest
	scBackupFolder // a typed folder
	scBackupName
	scCompression
	scBackupPw1
	scBackupPw2
	scSplit
	scBackupSummary
	scBackupType // full, incremental or differential
	scChainPw    // an encrypted chain's password
	scNetwork
	scNetManual
	scPower
)

// flow is the wizard a screen belongs to.
type flow int

const (
	flowNone flow = iota
	flowRestore
	flowClone
	flowBackup
	flowCheck
)

func (f flow) String() string {
	return [...]string{"", "Restore", "Clone", "Backup", "Check image"}[f]
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

// Model is the UI's state. Create it with New; Run wraps it in a program.
type Model struct {
	o     Options
	ctx   context.Context
	w, h  int
	st    styles
	scr   screen
	stack []screen
	flow  flow
	help  bool
	lists map[screen]*list
	in    input
	err   string // shown under the current screen until the next key
	note  string // a neutral line, e.g. "Opening image…"

	// wizard choices
	image     string
	info      *engine.ImageInfo
	password  []byte
	partition int // 0: whole image
	source    string
	srcPart   bool // the clone/backup source is a partition
	target    string
	mode      layout.Mode
	sbs       bool // sector by sector
	dest      string
	name      string
	level     images.Level
	bpw       []byte
	split     int64
	btype     images.PointKind // "" (no earlier backup in the folder) or the kind of backup chosen
	base      *engine.ImageInfo
	cpw       []byte // the chain's password
	disks     []engine.DiskInfo
	ifaces    []Iface
	iface     string
	scroll    int

	// the running operation
	events    chan tea.Msg
	cancel    context.CancelFunc
	running   bool
	confirmed bool // the user confirmed: the target may have been written
	askStop   bool
	stopped   bool
	opTitle   string
	status    engine.Status
	stages    []engine.Status // finished stages
	plan      *engine.Plan
	reply     chan error
	result    result

	action Action
}

type result struct {
	ok    bool
	title string
	lines []string
}

// New returns the UI's model. ctx bounds every operation it starts.
func New(ctx context.Context, o Options) *Model {
	o.defaults()
	return &Model{o: o, ctx: ctx, w: o.Width, h: o.Height, st: newStyles(o.Colour), lists: map[screen]*list{}, level: images.LevelNormal}
}

// Action is what the user chose at the end (quit, reboot, power off).
func (m *Model) Action() Action { return m.action }

func (m *Model) Init() tea.Cmd {
	m.home()
	return nil
}

func (m *Model) home() {
	m.scr, m.stack, m.flow, m.err, m.note = scHome, nil, flowNone, "", ""
	quit := "Quit"
	if m.o.Rescue {
		quit = "Exit to the lifeboat> prompt"
	}
	m.lists[scHome] = newList(
		item{label: "Restore      put an image back onto a disk or partition", key: "restore"},
		item{label: "Clone        copy a disk or partition straight to another", key: "clone"},
		item{label: "Backup       save a disk or partition into an image file", key: "backup"},
		item{label: "Check image  read every byte of an image and verify it", key: "check"},
		item{label: "Disks        list disks, partitions and filesystems", key: "disks"},
		item{label: "Network      interfaces and addresses", key: "network"},
		item{label: "Shell        a command line (type exit to come back)", key: "shell"},
		item{label: "Reboot / Power off", key: "power"},
		item{label: quit, key: "quit"},
	)
}

// push opens a screen; Esc comes back to the current one.
func (m *Model) push(s screen) {
	m.stack = append(m.stack, m.scr)
	m.scr, m.err, m.note, m.scroll = s, "", "", 0
}

func (m *Model) back() {
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

func (m *Model) textScreen(s screen, value string, mask bool) {
	m.push(s)
	m.in = input{mask: mask}
	m.in.set(value)
}

// --- messages ---

type infoMsg struct {
	info *engine.ImageInfo
	err  error
	pw   []byte
}
type progressMsg engine.Status
type confirmMsg struct {
	plan  engine.Plan
	reply chan error
}
type doneMsg struct {
	lines []string
	err   error
}
type shellMsg struct{ err error }
type folderMsg struct {
	dir  string
	base *engine.ImageInfo // the newest image of the same source, or nil
}
type netMsg struct {
	note string
	err  error
}

func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		// A serial console reports 0×0: keep the default.
		if msg.Width > 0 && msg.Height > 0 {
			m.w, m.h = msg.Width, msg.Height
		}
		return m, nil
	case infoMsg:
		return m, m.gotInfo(msg)
	case progressMsg:
		if msg.Final {
			m.stages = append(m.stages, engine.Status(msg))
		}
		m.status = engine.Status(msg)
		return m, m.listen()
	case confirmMsg:
		// The engine waits in Confirm: no listening until the user answers.
		p := msg.plan
		m.plan, m.reply = &p, msg.reply
		m.scr, m.err = scConfirm, ""
		m.in = input{}
		return m, nil
	case doneMsg:
		m.finished(msg)
		return m, nil
	case folderMsg:
		m.gotFolder(msg)
		return m, nil
	case shellMsg:
		if msg.err != nil {
			m.err = "shell: " + msg.err.Error()
		}
		return m, nil
	case netMsg:
		m.note, m.err = msg.note, ""
		if msg.err != nil {
			m.err = msg.err.Error()
		}
		m.loadIfaces()
		return m, nil
	case tea.KeyMsg:
		return m, m.key(msg)
	}
	return m, nil
}

func (m *Model) listen() tea.Cmd {
	ch := m.events
	if ch == nil {
		return nil
	}
	return func() tea.Msg { return <-ch }
}

// isText says whether the current screen types text (so '?' is a letter).
func (m *Model) isText() bool {
	switch m.scr {
	case scImagePath, scPassword, scTargetPath, scBackupFolder, scBackupName, scBackupPw1, scBackupPw2, scChainPw, scNetManual, scConfirm:
		return true
	}
	return false
}

func (m *Model) key(k tea.KeyMsg) tea.Cmd {
	if m.help {
		m.help = false
		return nil
	}
	if k.String() == "?" && !m.isText() && m.scr != scProgress {
		m.help = true
		return nil
	}
	switch m.scr {
	case scProgress:
		return m.progressKey(k)
	case scConfirm:
		return m.confirmKey(k)
	case scResult:
		if s := k.String(); s == "enter" || s == "esc" || s == "ctrl+c" {
			m.home()
		}
		return nil
	}
	switch k.String() {
	case "esc":
		m.back()
		return nil
	case "ctrl+c":
		if m.scr == scHome {
			return m.quit(ActionQuit)
		}
		m.home()
		return nil
	}
	m.err = ""
	if m.isText() {
		if k.String() == "enter" {
			return m.submit(m.in.String())
		}
		m.in.update(k)
		return nil
	}
	switch m.scr {
	case scDisks:
		switch k.String() {
		case "up", "k":
			m.scroll = max(m.scroll-1, 0)
		case "down", "j":
			m.scroll++
		case "pgdown":
			m.scroll += m.h - 6
		case "pgup":
			m.scroll = max(m.scroll-(m.h-6), 0)
		case "r":
			m.loadDisks()
		}
		return nil
	case scNetwork:
		return m.networkKey(k)
	}
	l := m.lists[m.scr]
	if l == nil {
		return nil
	}
	it, ok := l.update(k)
	if !ok {
		return nil
	}
	return m.pick(it)
}

func (m *Model) quit(a Action) tea.Cmd {
	m.action = a
	return tea.Quit
}

// pick acts on Enter on a list item.
func (m *Model) pick(it item) tea.Cmd {
	switch m.scr {
	case scHome:
		return m.homePick(it.key)
	case scImages:
		switch it.key {
		case "type":
			m.textScreen(scImagePath, "", false)
		case "rescan":
			m.imageList()
			m.note = "Looked again."
		default:
			return m.openImage(it.key, nil)
		}
	case scPoint:
		if it.key != m.image {
			return m.openImage(it.key, m.password)
		}
		m.afterPoint()
	case scScope:
		fmt.Sscan(it.key, &m.partition)
		m.targetList()
	case scTarget, scCloneSource, scBackupSource:
		if it.key == "type" {
			m.textScreen(scTargetPath, "", false)
			return nil
		}
		return m.pickedDevice(it.key)
	case scLayout:
		switch it.key {
		case "keep":
			m.mode, m.sbs = layout.Keep, false
		case "fill":
			m.mode, m.sbs = layout.Fill, false
		case "sbs":
			m.mode, m.sbs = layout.Keep, true
		}
		return m.start()
	case scBackupDest:
		if it.key == "type" {
			m.textScreen(scBackupFolder, "", false)
			return nil
		}
		m.dest = it.key
		return m.scanFolder()
	case scBackupType:
		m.btype = images.PointKind(it.key)
		m.askName()
	case scCompression:
		m.level, _ = images.ParseLevel(it.key)
		m.textScreen(scBackupPw1, "", true)
	case scSplit:
		fmt.Sscan(it.key, &m.split)
		m.push(scBackupSummary)
		m.lists[scBackupSummary] = newList(item{label: "Start the backup", key: "start"})
	case scBackupSummary:
		return m.start()
	case scPower:
		if !m.o.Rescue {
			m.err = "Lifeboat does not reboot or power off a running system; use the system's own menu. Esc goes back."
			return nil
		}
		if it.key == "reboot" {
			return m.quit(ActionReboot)
		}
		return m.quit(ActionPowerOff)
	}
	return nil
}

func (m *Model) homePick(key string) tea.Cmd {
	m.image, m.info, m.password, m.partition, m.target, m.source = "", nil, nil, 0, "", ""
	m.mode, m.sbs, m.dest, m.name, m.bpw, m.split, m.level = layout.Keep, false, "", "", nil, 0, images.LevelNormal
	m.btype, m.base, m.cpw = "", nil, nil
	switch key {
	case "restore", "check":
		m.flow = map[string]flow{"restore": flowRestore, "check": flowCheck}[key]
		m.push(scImages)
		m.imageList()
	case "clone":
		m.flow = flowClone
		m.push(scCloneSource)
		m.deviceList(scCloneSource, true, true, false, "")
	case "backup":
		m.flow = flowBackup
		m.push(scBackupSource)
		m.deviceList(scBackupSource, true, true, false, "")
	case "disks":
		m.push(scDisks)
		m.loadDisks()
	case "network":
		m.push(scNetwork)
		m.loadIfaces()
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

// submit acts on Enter in a text field.
func (m *Model) submit(v string) tea.Cmd {
	v = strings.TrimSpace(v)
	switch m.scr {
	case scImagePath:
		if v == "" {
			m.err = "Type the path of an image file (its first part), or an http:// URL."
			return nil
		}
		return m.openImage(v, nil)
	case scPassword:
		return m.openImage(m.image, []byte(m.in.String()))
	case scTargetPath:
		if v == "" {
			m.err = "Type a device (/dev/sdb) or a file path."
			return nil
		}
		return m.pickedDevice(v)
	case scBackupFolder:
		if v == "" {
			m.err = "Type the folder the image goes into."
			return nil
		}
		m.dest = v
		return m.scanFolder()
	case scBackupName:
		if v == "" || strings.ContainsAny(v, `/\`) {
			m.err = "Type a file name (without folders), e.g. pc1.lbi."
			return nil
		}
		if !strings.HasSuffix(v, ".lbi") {
			v += ".lbi"
		}
		m.name = v
		if m.chained() {
			// The new point takes the chain's compression and encryption.
			if m.base.Cipher != images.CipherNone {
				m.textScreen(scChainPw, "", true)
				return nil
			}
			m.splitList()
			return nil
		}
		m.push(scCompression)
		m.lists[scCompression] = newList(
			item{label: "normal  good size, fast enough (recommended)", key: "normal"},
			item{label: "fast    less CPU, larger image", key: "fast"},
			item{label: "high    smallest image, slowest", key: "high"},
			item{label: "none    store as is", key: "none"},
		)
	case scBackupPw1:
		m.bpw = []byte(m.in.String())
		if len(m.bpw) == 0 {
			m.splitList()
			return nil
		}
		m.textScreen(scBackupPw2, "", true)
	case scChainPw:
		m.cpw = []byte(m.in.String())
		if len(m.cpw) == 0 {
			m.err = "Type the password of the backups in " + m.dest + "."
			return nil
		}
		m.splitList()
	case scBackupPw2:
		if m.in.String() != string(m.bpw) {
			m.back()
			m.in = input{mask: true}
			m.err = "The two passwords differ; type it again."
			return nil
		}
		m.splitList()
	case scNetManual:
		f := strings.Fields(v)
		if len(f) < 1 || len(f) > 2 || !strings.Contains(f[0], "/") {
			m.err = "Write ADDRESS/PREFIX and optionally a gateway, e.g. 192.168.1.20/24 192.168.1.1"
			return nil
		}
		gw := ""
		if len(f) == 2 {
			gw = f[1]
		}
		iface, set := m.iface, m.o.Network.SetAddress
		m.back()
		return func() tea.Msg {
			err := set(iface, f[0], gw)
			return netMsg{note: fmt.Sprintf("%s: address %s set.", iface, f[0]), err: err}
		}
	}
	return nil
}

func (m *Model) splitList() {
	m.push(scSplit)
	m.lists[scSplit] = newList(
		item{label: "Do not split", key: "0"},
		item{label: "4 GiB parts (for FAT32 sticks)", key: fmt.Sprint(int64(4<<30 - 1<<20))},
		item{label: "2 GiB parts", key: fmt.Sprint(int64(2 << 30))},
		item{label: "650 MiB parts (for CDs)", key: fmt.Sprint(int64(650 << 20))},
	)
}

// chained says the backup adds a point to an existing chain.
func (m *Model) chained() bool {
	return m.base != nil && (m.btype == images.PointIncremental || m.btype == images.PointDifferential)
}

// sourceSize is the size of the backup source as the disk list has it, 0
// if unknown.
func (m *Model) sourceSize() int64 {
	for _, d := range m.disks {
		if d.Path == m.source {
			return d.Size
		}
		for _, p := range d.Partitions {
			if p.Path == m.source {
				return p.Size
			}
		}
	}
	return 0
}

// scanFolder looks, in the background, for images of the same source in
// the chosen folder: the newest is what an incremental or differential
// backup builds on.
func (m *Model) scanFolder() tea.Cmd {
	dir, b, list := m.dest, m.o.Backend, m.o.FolderImages
	size, kind := m.sourceSize(), images.KindDisk
	if m.srcPart {
		kind = images.KindPartition
	}
	m.note = "Looking for earlier backups in " + dir + " ..."
	return func() tea.Msg {
		var base *engine.ImageInfo
		if size <= 0 {
			return folderMsg{dir: dir}
		}
		for _, p := range list(dir) {
			ii, err := b.Info(p, nil)
			if err != nil || len(ii.Meta.Streams) == 0 {
				continue
			}
			s := ii.Meta.Streams[0]
			if s.Size != size || s.Kind != kind {
				continue
			}
			if base == nil || ii.Created.After(base.Created) {
				base = ii
			}
		}
		return folderMsg{dir: dir, base: base}
	}
}

func (m *Model) gotFolder(msg folderMsg) {
	if (m.scr != scBackupDest && m.scr != scBackupFolder) || msg.dir != m.dest {
		return // the user moved on
	}
	m.note = ""
	m.base, m.btype, m.cpw = msg.base, "", nil
	if msg.base == nil {
		m.askName()
		return
	}
	m.push(scBackupType)
	l := newList(
		item{label: "Full backup (new chain)", key: string(images.PointFull)},
		item{label: "Incremental (only what changed since the latest point)", key: string(images.PointIncremental)},
		item{label: "Differential (only what changed since the full backup)", key: string(images.PointDifferential)},
	)
	l.cur = 1
	m.lists[scBackupType] = l
}

func (m *Model) askName() {
	base := filepath.Base(m.source)
	date := ""
	if m.o.Now != nil {
		date = "-" + m.o.Now()
	}
	m.textScreen(scBackupName, base+date+".lbi", false)
}

// --- images ---

func (m *Model) imageList() {
	var items []item
	for _, p := range m.o.Images() {
		items = append(items, item{label: p, key: p})
	}
	items = append(items, item{label: "Type a path or URL...", key: "type"}, item{label: "Look again (rescan the disks)", key: "rescan"})
	m.lists[scImages] = newList(items...)
}

func (m *Model) openImage(path string, pw []byte) tea.Cmd {
	b := m.o.Backend
	m.note = "Opening " + path + " ..."
	m.image = path
	var pwf func() ([]byte, error)
	if pw != nil {
		pwf = func() ([]byte, error) { return pw, nil }
	}
	return func() tea.Msg {
		info, err := b.Info(path, pwf)
		return infoMsg{info: info, err: err, pw: pw}
	}
}

func (m *Model) gotInfo(msg infoMsg) tea.Cmd {
	m.note = ""
	if msg.err != nil {
		m.err = msg.err.Error()
		if m.scr == scPassword {
			m.in = input{mask: true}
			if errors.Is(msg.err, images.ErrWrongPassword) {
				m.err = "That password does not open the image (" + m.err + "); type it again."
			}
		}
		return nil
	}
	if msg.info.Locked {
		if m.scr != scPassword {
			m.textScreen(scPassword, "", true)
		} else {
			m.err = "That password does not open the image; type it again."
			m.in = input{mask: true}
		}
		return nil
	}
	m.info, m.password = msg.info, msg.pw
	if m.flow == flowCheck {
		return m.start()
	}
	if m.scr == scPoint {
		// An earlier point was picked and is open now.
		m.afterPoint()
		return nil
	}
	m.push(scPoint)
	var what []string
	for _, s := range msg.info.Meta.Streams {
		what = append(what, fmt.Sprintf("%s %s of %s", engine.HumanBytes(s.Size), s.Kind, s.Source))
	}
	if len(msg.info.Chain) == 0 {
		created := msg.info.Created.UTC().Format("2006-01-02 15:04")
		m.lists[scPoint] = newList(item{label: fmt.Sprintf("%s  full backup: %s", created, strings.Join(what, ", ")), key: m.image})
		return nil
	}
	// A point of a chain: the newest (this image) first, then the earlier
	// points it builds on, each restorable on its own.
	var items []item
	for i := len(msg.info.Chain) - 1; i >= 0; i-- {
		c := msg.info.Chain[i]
		l := fmt.Sprintf("%s  %-12s %s", c.Created.UTC().Format("2006-01-02 15:04"), c.Kind, filepath.Base(c.File))
		if c.Missing {
			l += "  (missing)"
		}
		items = append(items, item{label: l, key: c.File, disabled: c.Missing})
	}
	m.lists[scPoint] = newList(items...)
	return nil
}

func (m *Model) stream() *images.Stream {
	if m.info == nil || len(m.info.Meta.Streams) == 0 {
		return nil
	}
	return &m.info.Meta.Streams[0]
}

func (m *Model) afterPoint() {
	s := m.stream()
	if s != nil && s.Kind == images.KindDisk && s.Table != nil && len(s.Table.Partitions) > 0 {
		m.push(scScope)
		items := []item{{label: fmt.Sprintf("Whole disk: %s, %d partitions (%s)", engine.HumanBytes(s.Size), len(s.Table.Partitions), s.Table.Type), key: "0"}}
		for _, p := range s.Table.Partitions {
			items = append(items, item{label: "Partition " + partLine(p), key: fmt.Sprint(p.Number)})
		}
		m.lists[scScope] = newList(items...)
		return
	}
	m.partition = 0
	m.targetList()
}

func partLine(p images.Partition) string {
	l := fmt.Sprintf("%-2d %9s", p.Number, engine.HumanBytes(p.Size))
	if p.FS != nil {
		l += fmt.Sprintf("  %s %q", p.FS.Type, p.FS.Label)
	}
	if p.Name != "" {
		l += "  name " + p.Name
	}
	return l
}

// --- disks ---

func (m *Model) loadDisks() {
	ds, err := m.o.Backend.Disks()
	m.disks = ds
	if err != nil {
		m.err = err.Error()
	}
}

func diskLine(d engine.DiskInfo) string {
	l := fmt.Sprintf("%-8s %-6s %9s", d.Name, d.Bus, engine.HumanBytes(d.Size))
	if d.Table != "" {
		l += "  " + d.Table
	} else {
		l += "  no table"
	}
	if d.Model != "" {
		l += "  " + d.Model
	}
	if d.Serial != "" {
		l += "  serial " + d.Serial
	}
	if d.ReadOnly {
		l += "  read-only"
	}
	return l
}

func fsText(fs *images.FS) string {
	if fs == nil {
		return "no filesystem found"
	}
	s := fs.Type
	if fs.Label != "" {
		s += fmt.Sprintf(" %q", fs.Label)
	}
	if fs.Used >= 0 && fs.Size > 0 {
		s += fmt.Sprintf(", %s used", engine.HumanBytes(fs.Used))
	}
	return s
}

// deviceList fills a list of disks and (with parts) their partitions.
// exclude is a device (the clone source) not offered.
func (m *Model) deviceList(s screen, disks, parts, writable bool, exclude string) {
	m.loadDisks()
	var items []item
	for _, d := range m.disks {
		if d.Bus == "loop" && d.BackingFile == "" {
			continue
		}
		ro := writable && d.ReadOnly
		if disks {
			items = append(items, item{label: diskLine(d), key: d.Path, disabled: ro || d.Path == exclude})
		}
		if parts {
			for _, p := range d.Partitions {
				items = append(items, item{label: fmt.Sprintf("  %-9s %9s  %s", p.Name, engine.HumanBytes(p.Size), fsText(p.FS)), key: p.Path, disabled: ro || p.Path == exclude})
			}
		}
	}
	if s == scTarget {
		items = append(items, item{label: "Type a device or file path...", key: "type"})
	}
	if len(items) == 0 {
		m.err = "No disks found."
	}
	m.lists[s] = newList(items...)
}

func (m *Model) targetList() {
	m.push(scTarget)
	switch m.flow {
	case flowRestore:
		m.deviceList(scTarget, true, m.partition != 0 || m.stream() != nil && m.stream().Kind == images.KindPartition, true, "")
	case flowClone:
		m.deviceList(scTarget, !m.srcPart, m.srcPart, true, m.source)
	}
}

// pickedDevice moves on from a source or target choice.
func (m *Model) pickedDevice(path string) tea.Cmd {
	scr := m.scr
	if scr == scTargetPath {
		scr = m.stack[len(m.stack)-1]
	}
	isPart := false
	for _, d := range m.disks {
		for _, p := range d.Partitions {
			if p.Path == path {
				isPart = true
			}
		}
	}
	switch scr {
	case scCloneSource:
		m.source, m.srcPart = path, isPart
		m.targetList()
	case scBackupSource:
		m.source, m.srcPart = path, isPart
		m.push(scBackupDest)
		var items []item
		for _, d := range m.o.Destinations() {
			items = append(items, item{label: d, key: d})
		}
		items = append(items, item{label: "Type a folder...", key: "type"})
		m.lists[scBackupDest] = newList(items...)
	case scTarget:
		m.target = path
		s := m.stream()
		switch {
		case m.flow == flowClone && !m.srcPart:
			m.layoutList(true, true)
		case m.flow == flowClone:
			m.layoutList(false, true)
		case m.partition == 0 && s != nil && s.Table != nil:
			m.layoutList(true, false)
		default:
			m.mode = layout.Keep
			return m.start()
		}
	}
	return nil
}

func (m *Model) layoutList(disk, sbs bool) {
	m.push(scLayout)
	var items []item
	if disk {
		items = append(items,
			item{label: "Keep the partition sizes (a larger disk keeps free space at the end)", key: "keep"},
			item{label: "Fill the disk: the last data partition grows into the extra space", key: "fill"})
	} else {
		items = append(items, item{label: "Copy the blocks the filesystem uses (fast)", key: "keep"})
	}
	if sbs {
		items = append(items, item{label: "Sector by sector: copy every sector, sizes kept (slow)", key: "sbs"})
	}
	m.lists[scLayout] = newList(items...)
}

// --- network ---

func (m *Model) loadIfaces() {
	ifs, err := m.o.Interfaces()
	m.ifaces = ifs
	if err != nil {
		m.err = err.Error()
	}
	var items []item
	for _, i := range ifs {
		state := "down"
		if i.Up {
			state = "up"
		}
		addrs := strings.Join(i.Addrs, " ")
		if addrs == "" {
			addrs = "no address"
		}
		items = append(items, item{label: fmt.Sprintf("%-10s %-17s %-4s %s", i.Name, i.MAC, state, addrs), key: i.Name})
	}
	cur := 0
	if l := m.lists[scNetwork]; l != nil {
		cur = l.cur
	}
	l := newList(items...)
	if cur < len(items) {
		l.cur = cur
	}
	m.lists[scNetwork] = l
}

func (m *Model) networkKey(k tea.KeyMsg) tea.Cmd {
	l := m.lists[scNetwork]
	l.update(k)
	it, ok := l.selected()
	switch k.String() {
	case "r":
		m.loadIfaces()
		return nil
	case "d", "m":
		if m.o.Network == nil {
			m.err = "On a running system the network belongs to the system's own network manager; this screen only lists it."
			return nil
		}
		if !ok {
			return nil
		}
		if k.String() == "m" {
			m.iface = it.key
			m.textScreen(scNetManual, "", false)
			return nil
		}
		dhcp, name := m.o.Network.DHCP, it.key
		m.note = "Asking for an address on " + name + " ..."
		return func() tea.Msg {
			err := dhcp(name)
			return netMsg{note: "DHCP requested on " + name + "; press r to see the address once it arrives.", err: err}
		}
	}
	return nil
}
