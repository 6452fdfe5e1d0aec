//go:build linux

package rescue

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// Options configure Run. The zero value is what the rescue environment uses.
type Options struct {
	Version string
	// Console receives everything the user must see; it defaults to
	// /dev/console, because u-root's init hands the uinit a pipe whose
	// last lines can be lost at power-off.
	Console io.Writer
	Input   io.Reader // default os.Stdin
	Cmdline string    // default: /proc/cmdline
	// ModuleDir defaults to /lib/modules/<kernel release>.
	ModuleDir string
	MountRoot string // default /mnt
	// NoPowerOff leaves the job's done action to the caller (tests on a host).
	NoPowerOff bool
}

// ReadyMarker starts the line printed when the environment is ready.
const ReadyMarker = "LIFEBOAT-READY"

type env struct {
	o       Options
	con     io.Writer
	conMu   sync.Mutex
	start   time.Time
	mounts  []mount
	loaded  map[string]bool
	nloaded int
	byBus   map[string][]alias
	seen    map[string]bool // modalias files already matched
	known   map[string]bool // disks already mounted and shown
	settled chan struct{}   // closed when no new hardware appears
	net     netState
	debug   bool       // lifeboat.debug on the command line: library logs to the console
	usb     bool       // a USB host controller driver was loaded
	mu      sync.Mutex // held while mounting and scanning
	modMu   sync.Mutex // guards loaded and nloaded while modules load side by side
	ui      UI
	// held collects console lines while the text UI owns the console
	// (guarded by conMu); they are printed when it ends.
	tuiOn bool
	held  []string
}

type mount struct {
	dev, dir, fstype, label, uuid string
	disk                          string // the whole disk it is on
	partName                      string // GPT partition name, also matched by LABEL=
}

// Run brings the environment up and runs the job or the prompt. It returns
// only for DoneShell or when the user leaves the prompt.
func Run(ctx context.Context, o Options) error {
	e := &env{o: o, start: time.Now(), loaded: map[string]bool{}, known: map[string]bool{}, net: newNetState()}
	if o.Console == nil {
		if c, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
			e.con = c
		} else {
			e.con = os.Stdout
		}
	} else {
		e.con = o.Console
	}
	if o.Input == nil {
		e.o.Input = os.Stdin
	}
	if o.MountRoot == "" {
		e.o.MountRoot = "/mnt"
	}
	if o.ModuleDir == "" {
		var u unix.Utsname
		unix.Uname(&u)
		e.o.ModuleDir = filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
	}
	cmdline := o.Cmdline
	if cmdline == "" {
		b, _ := os.ReadFile("/proc/cmdline")
		cmdline = string(b)
	}
	// u-root's DHCP client and kmodule log through the standard logger.
	log.SetOutput(io.Discard)
	if strings.Contains(cmdline, "lifeboat.debug") {
		log.SetOutput(e.con)
		e.debug = true
	}
	job, jobErr := ParseCmdline(cmdline)
	e.ui = job.UI

	upStart := uptime()
	e.say("lifeboat %s rescue environment starting (kernel up %.2fs)", o.Version, upStart)
	t0 := time.Now()
	e.loadDrivers()
	driversMS := time.Since(t0).Milliseconds()
	e.startNetwork(ctx)
	t0 = time.Now()
	disks, err := engine.Disks()
	if err != nil {
		e.say("disks: %v", err)
	}
	e.mountNew(disks)
	mountMS := time.Since(t0).Milliseconds()
	images := e.findImages()
	// Guest clock: uptime when our init started and now, for boot benchmarks.
	e.say("%s version=%s disks=%d images=%d modules=%d drivers_ms=%d mount_ms=%d init_ms=%d uptime_start=%.3f uptime_ready=%.3f",
		ReadyMarker, o.Version, len(disks), len(images), e.nloaded, driversMS, mountMS, time.Since(e.start).Milliseconds(), upStart, uptime())
	e.showDisks(disks)
	if len(images) == 0 {
		e.say("No images found on the disks (*.lbi). Attach the disk or stick that holds them and type: rescan")
	}
	for _, im := range images {
		e.say("image: %s", im)
	}
	go e.shellOn("/dev/tty2")
	// Slow hardware (USB sticks) keeps arriving after ready.
	e.settled = make(chan struct{})
	go e.watch(disks)

	if jobErr != nil {
		e.result(job, engine.ExitUsage, "", jobErr)
		return e.finish(ctx, DoneShell)
	}
	if job.Action != ActionNone {
		e.runJob(ctx, job)
		return e.finish(ctx, job.Done)
	}
	return e.console(ctx)
}

// uptime is the guest's own clock: seconds since the kernel started.
func uptime() float64 {
	var si unix.Sysinfo_t
	b, err := os.ReadFile("/proc/uptime")
	if err == nil {
		var up float64
		if _, err := fmt.Sscanf(string(b), "%f", &up); err == nil {
			return up
		}
	}
	unix.Sysinfo(&si)
	return float64(si.Uptime)
}

func (e *env) say(format string, args ...any) {
	e.conMu.Lock()
	defer e.conMu.Unlock()
	if e.tuiOn {
		e.held = append(e.held, fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(e.con, format+"\n", args...)
	if f, ok := e.con.(*os.File); ok {
		f.Sync()
	}
}

// --- drivers ---

type alias struct{ pattern, module string }

// loadDrivers does what udev's coldplug does: every device's modalias is
// matched against modules.alias and the matching modules are loaded, again
// while loading them makes new devices appear (a USB controller brings its
// disks), until nothing new has appeared for a moment. Filesystem modules
// are loaded when a filesystem needs them (mountAll).
func (e *env) loadDrivers() {
	e.byBus = map[string][]alias{}
	for _, a := range readAliases(filepath.Join(e.o.ModuleDir, "modules.alias")) {
		bus, _, _ := strings.Cut(a.pattern, ":")
		e.byBus[bus] = append(e.byBus[bus], a)
	}
	e.seen = map[string]bool{}
	quiet := 0
	deadline := time.Now().Add(8 * time.Second)
	// USB devices appear a while after their controller's driver loads.
	for time.Now().Before(deadline) && (quiet < 2 || quiet < 5 && e.usb) {
		if e.coldplug() == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(75 * time.Millisecond)
	}
}

func (e *env) load(name, params string) bool {
	if e.loaded[name] {
		return false
	}
	return e.loadOne(name)
}

// loadOne loads a module and its dependencies; several may run at once.
func (e *env) loadOne(name string) bool {
	params := ""
	e.modMu.Lock()
	e.loaded[name] = true
	e.modMu.Unlock()
	if strings.Contains(name, "usb_storage") || name == "usb-storage" {
		params = "delay_use=0" // do not wait a second before scanning a stick
	}
	if strings.HasSuffix(name, "hci_pci") || strings.HasSuffix(name, "hci_hcd") {
		e.usb = true
	}
	if err := kmodule.ProbeOptions(name, params, kmodule.ProbeOpts{RootDir: "/", KVer: filepath.Base(e.o.ModuleDir)}); err != nil {
		slog.Debug("module", "name", name, "err", err)
		return false
	}
	e.modMu.Lock()
	e.nloaded++
	e.modMu.Unlock()
	return true
}

// coldplug matches the modaliases not seen before, loads what they need
// and returns how many new devices it found.
func (e *env) coldplug() int {
	n := 0
	var todo []string
	files, _ := filepath.Glob("/sys/bus/*/devices/*/modalias")
	for _, f := range files {
		if e.seen[f] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		e.seen[f] = true
		n++
		ma := strings.TrimSpace(string(b))
		bus, _, _ := strings.Cut(ma, ":")
		for _, a := range e.byBus[bus] {
			if ok, _ := path.Match(a.pattern, ma); ok && !e.loaded[a.module] && !slices.Contains(todo, a.module) {
				todo = append(todo, a.module)
			}
		}
	}
	// Drivers probe their devices while they load, slowly on some
	// hardware (an IDE controller): load independent ones side by side.
	var wg sync.WaitGroup
	for _, m := range todo {
		wg.Add(1)
		go func() { defer wg.Done(); e.loadOne(m) }()
	}
	wg.Wait()
	return n
}

func readAliases(p string) []alias {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []alias
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) == 3 && fs[0] == "alias" {
			out = append(out, alias{fs[1], fs[2]})
		}
	}
	return out
}

// --- filesystems ---

// mountNew mounts every filesystem it can read on disks it has not seen,
// read-only, at MountRoot/<device name> (for example /mnt/sdb1), and
// returns how many disks were new.
func (e *env) mountNew(disks []engine.DiskInfo) int {
	n := 0
	for _, d := range disks {
		if d.Bus == "loop" || strings.HasPrefix(d.Name, "zram") || e.known[d.Path] {
			continue
		}
		e.known[d.Path] = true
		n++
		if len(d.Partitions) == 0 {
			e.tryMount(d.Path, d.Path, d.Name, "", d.FS)
		}
		for _, p := range d.Partitions {
			e.tryMount(d.Path, p.Path, p.Name, p.Label, p.FS)
		}
	}
	return n
}

// watch goes on loading drivers for devices that appear after ready (USB
// enumeration is slow), shows and mounts new disks, and closes e.settled
// once nothing new has appeared for a while.
func (e *env) watch(seen []engine.DiskInfo) {
	defer close(e.settled)
	start, last := time.Now(), time.Now()
	quiet := 1500 * time.Millisecond
	if e.usb {
		quiet = 3 * time.Second
	}
	for time.Since(last) < quiet && time.Since(start) < 20*time.Second {
		time.Sleep(200 * time.Millisecond)
		e.mu.Lock()
		if e.coldplug() > 0 {
			last = time.Now()
		}
		disks, err := engine.Disks()
		if err == nil {
			var fresh []engine.DiskInfo
			for _, d := range disks {
				if !e.known[d.Path] && d.Bus != "loop" {
					fresh = append(fresh, d)
				}
			}
			if e.mountNew(fresh) > 0 {
				last = time.Now()
				e.showDisks(fresh)
				for _, im := range e.findImages() {
					e.say("image: %s", im)
				}
			}
		}
		e.mu.Unlock()
	}
}

func (e *env) tryMount(disk, dev, name, partName string, fs *images.FS) {
	var fstype, label, uuid string
	if fs != nil {
		fstype, label, uuid = fs.Type, fs.Label, fs.UUID
	} else if strings.HasPrefix(name, "sr") && isISO9660(dev) {
		fstype = "iso9660"
	} else {
		return
	}
	dir := filepath.Join(e.o.MountRoot, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, m := range fsModules[fstype] {
		e.load(m, "")
	}
	var err error
	switch fstype {
	case "ext2", "ext3", "ext4":
		err = unix.Mount(dev, dir, "ext4", unix.MS_RDONLY, "noload")
	case "vfat", "exfat", "iso9660":
		err = unix.Mount(dev, dir, fstype, unix.MS_RDONLY, "")
	case "ntfs":
		// Debian's kernel has no NTFS driver: ntfs-3g over FUSE.
		var out []byte
		out, err = exec.Command("ntfs-3g", "-o", "ro", dev, dir).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
	default:
		os.Remove(dir)
		return
	}
	if err != nil {
		e.say("mount %s (%s): %v", dev, fstype, err)
		os.Remove(dir)
		return
	}
	e.mounts = append(e.mounts, mount{dev: dev, dir: dir, fstype: fstype, label: label, uuid: uuid, disk: disk, partName: partName})
	e.say("mounted %s (%s %q) read-only at %s", dev, fstype, label, dir)
}

// isISO9660 looks for the CD001 signature; an empty drive fails to read.
func isISO9660(dev string) bool {
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 5)
	_, err = f.ReadAt(b, 32769)
	return err == nil && string(b) == "CD001"
}

// fsModules are loaded before the first mount of each filesystem type
// (ext4's crc32c is a soft dependency that the loader does not follow).
var fsModules = map[string][]string{
	"ext2": {"crc32c_generic", "ext4"}, "ext3": {"crc32c_generic", "ext4"}, "ext4": {"crc32c_generic", "ext4"},
	"vfat": {"nls_cp437", "nls_ascii", "nls_iso8859_1", "nls_utf8", "vfat"}, "exfat": {"nls_utf8", "exfat"},
	"iso9660": {"isofs"}, "ntfs": {"fuse"},
}

// unmountDisk releases our read-only mounts on a disk about to be written.
func (e *env) unmountDisk(disk string) error {
	var keep []mount
	for _, m := range e.mounts {
		if m.disk != disk {
			keep = append(keep, m)
			continue
		}
		if err := unix.Unmount(m.dir, 0); err != nil {
			return fmt.Errorf("unmount %s from %s: %w", m.dev, m.dir, err)
		}
	}
	e.mounts = keep
	return nil
}

var splitPart = regexp.MustCompile(`\.\d{3}\.lbi$`)

// findImages lists *.lbi first parts on the mounted filesystems, a few
// folders deep.
func (e *env) findImages() []string {
	var out []string
	for _, m := range e.mounts {
		filepath.WalkDir(m.dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && strings.Count(strings.TrimPrefix(p, m.dir), "/") > 3 {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".lbi") && !splitPart.MatchString(p) {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

func (e *env) showDisks(disks []engine.DiskInfo) {
	for _, d := range disks {
		if d.Bus == "loop" {
			continue
		}
		line := fmt.Sprintf("disk: %s %s bus=%s", d.Path, engine.HumanBytes(d.Size), d.Bus)
		if d.Model != "" {
			line += fmt.Sprintf(" model=%q", d.Model)
		}
		if d.Serial != "" {
			line += " serial=" + d.Serial
		}
		if d.Table != "" {
			line += " table=" + d.Table
		}
		e.say("%s", line)
		for _, p := range d.Partitions {
			l := fmt.Sprintf("  %s %s", p.Path, engine.HumanBytes(p.Size))
			if p.FS != nil {
				l += fmt.Sprintf(" %s %q", p.FS.Type, p.FS.Label)
			}
			e.say("%s", l)
		}
	}
}

// --- the job ---

// resolveFile finds a file named by the filesystem that holds it.
func (e *env) resolveFile(spec string) (string, error) {
	fs, err := ParseFileSpec(spec)
	if err != nil {
		return "", err
	}
	if fs.By == "path" || fs.By == "url" {
		return fs.Path, nil
	}
	for _, m := range e.mounts {
		// LABEL= matches the filesystem label or the GPT partition name:
		// FAT labels hold 11 characters, so LIFEBOAT-DATA is a name.
		if fs.By == "label" && (m.label == fs.Key || m.partName == fs.Key) || fs.By == "uuid" && strings.EqualFold(m.uuid, fs.Key) || fs.By == "device" && m.dev == fs.Key {
			p := filepath.Join(m.dir, filepath.FromSlash(fs.Path))
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%s: the filesystem %s=%s is mounted at %s but has no %s", spec, strings.ToUpper(fs.By), fs.Key, m.dir, fs.Path)
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: no mounted filesystem has %s %s; attach the disk that holds it (found: %s)", spec, fs.By, fs.Key, e.mountList())
}

func (e *env) mountList() string {
	var s []string
	for _, m := range e.mounts {
		s = append(s, fmt.Sprintf("%s %s label=%q", m.dev, m.fstype, m.label))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

// resolveTarget finds the target disk. first-empty-disk is the first disk
// with no partition table and only zeros in its first and last MiB.
func (e *env) resolveTarget(spec, image string) (string, error) {
	disks, err := engine.Disks()
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(spec, "/dev/"):
		return spec, nil
	case strings.HasPrefix(spec, "serial="):
		want := strings.TrimPrefix(spec, "serial=")
		for _, d := range disks {
			if d.Serial == want {
				return d.Path, nil
			}
		}
		return "", fmt.Errorf("lifeboat.target=%s: no disk has that serial; disks: %s", spec, diskList(disks))
	case spec == "first-empty-disk":
		for _, d := range disks {
			if d.Bus == "loop" || d.ReadOnly || strings.HasPrefix(d.Name, "sr") {
				continue
			}
			if holds, _ := blockdev.Holds(d.Path, image); holds {
				continue
			}
			if empty, _ := diskEmpty(d.Path); empty && d.Table == "" {
				return d.Path, nil
			}
		}
		return "", fmt.Errorf("lifeboat.target=first-empty-disk: no disk is empty (no partition table, zeros in its first and last MiB); disks: %s", diskList(disks))
	}
	return "", fmt.Errorf("lifeboat.target=%s: use /dev/DISK, serial=SERIAL or first-empty-disk", spec)
}

func diskList(ds []engine.DiskInfo) string {
	var s []string
	for _, d := range ds {
		if d.Bus != "loop" {
			s = append(s, fmt.Sprintf("%s (%s, serial %q, table %q)", d.Path, engine.HumanBytes(d.Size), d.Serial, d.Table))
		}
	}
	return strings.Join(s, ", ")
}

// diskEmpty reports whether the first and last MiB of a disk are zeros.
func diskEmpty(p string) (bool, error) {
	d, err := blockdev.Open(p, blockdev.ReadOnly)
	if err != nil {
		return false, err
	}
	defer d.Close()
	n := min(d.Size, 1<<20)
	buf := make([]byte, n)
	for _, off := range []int64{0, d.Size - n} {
		if _, err := d.ReadAt(buf, off); err != nil {
			return false, err
		}
		for _, b := range buf {
			if b != 0 {
				return false, nil
			}
		}
	}
	return true, nil
}

func (e *env) runJob(ctx context.Context, j Job) {
	start := time.Now()
	<-e.settled // the image or the target may be on a USB stick still arriving
	if strings.HasPrefix(j.Image, "http") {
		wait := cmp.Or(j.NetWait, networkWait)
		select {
		case <-e.net.up:
		case <-time.After(wait):
			e.result(j, engine.ExitNotFound, "", fmt.Errorf("image %s: no network address after %v: %s", j.Image, wait, e.net.problem()))
			return
		}
	}
	image, err := e.resolveFile(j.Image)
	if err != nil {
		e.result(j, engine.ExitNotFound, "", err)
		return
	}
	target, err := e.resolveTarget(j.Target, image)
	if err != nil {
		e.result(j, engine.ExitRefused, "", err)
		return
	}
	if !j.Force && !strings.HasPrefix(j.Target, "first-empty") {
		if empty, err := diskEmpty(target); err == nil && !empty {
			e.result(j, engine.ExitRefused, target, fmt.Errorf("target %s is not empty (it has data in its first or last MiB); add lifeboat.force=1 to overwrite it", target))
			return
		}
	}
	var pw func() ([]byte, error)
	if j.PasswordFile != "" {
		pw = func() ([]byte, error) {
			p, err := e.resolveFile(j.PasswordFile)
			if err != nil {
				return nil, err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			line, _, _ := strings.Cut(string(b), "\n")
			return []byte(strings.TrimRight(line, "\r")), nil
		}
	}
	if err := e.unmountDisk(target); err != nil {
		e.result(j, engine.ExitRefused, target, err)
		return
	}
	e.say("lifeboat: restoring %s to %s", image, target)
	res, err := engine.Restore(ctx, engine.RestoreOptions{
		Image: image, Target: target, Partition: j.Partition, Password: pw,
		Encryption: engine.Encryption{Require: j.RequireEncrypted, PasswordGiven: j.PasswordFile != "",
			Warn: func(msg string) { e.say("lifeboat: warning: %s", msg) }},
		Progress: &consoleProgress{e: e},
	})
	if err != nil {
		e.result(j, engine.ExitCode(err), target, err)
		return
	}
	e.report(j, okLine(j.Action, image, target, res, time.Since(start)))
}

// report prints the result line and, if the job says where, POSTs it.
func (e *env) report(j Job, line string) {
	e.say("%s", line)
	if j.Report == "" {
		return
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for attempt := range 3 {
		resp, err := c.Post(j.Report, "text/plain", strings.NewReader(line+"\n"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if ue, ok := err.(*url.Error); ok {
			ue.URL = redactURL(ue.URL)
		}
		e.say("lifeboat: report to %s failed (%v)", redactURL(j.Report), err)
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
}

// redactURL is a URL for the console: its query (the PXE server's report
// token) left out.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

func (e *env) result(j Job, code int, target string, err error) {
	reason := strings.ReplaceAll(err.Error(), `"`, `'`)
	e.say("lifeboat: %v", err)
	e.report(j, fmt.Sprintf("%s status=failed exit=%d action=%s target=%s reason=\"%s\"", ResultMarker, code, j.Action, target, reason))
}

type consoleProgress struct {
	e    *env
	last time.Time
}

func (p *consoleProgress) Report(s engine.Status) {
	if !s.Final && time.Since(p.last) < 3*time.Second {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if s.Total > 0 {
		pct = float64(s.Done) * 100 / float64(s.Total)
	}
	p.e.say("lifeboat: %s %5.1f%% %s of %s, %s/s", s.Stage, pct, engine.HumanBytes(s.Done), engine.HumanBytes(s.Total), engine.HumanBytes(int64(s.Rate)))
}

// finish carries out the done action.
func (e *env) finish(ctx context.Context, d Done) error {
	if e.o.NoPowerOff {
		return nil
	}
	switch d {
	case DonePowerOff, DoneReboot:
		for _, m := range e.mounts {
			unix.Unmount(m.dir, 0)
		}
		unix.Sync()
		e.say("lifeboat: %s", d)
		time.Sleep(200 * time.Millisecond) // let the serial line drain
		cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
		if d == DoneReboot {
			cmd = unix.LINUX_REBOOT_CMD_RESTART
		}
		return unix.Reboot(cmd)
	}
	return e.console(ctx)
}

// prompt is the line-based console (lifeboat.ui=prompt, or after leaving
// the text UI): it runs lifeboat commands, a shell, the text UI, or powers
// off.
func (e *env) prompt(ctx context.Context) error {
	e.say("Type a lifeboat command (disks, info IMAGE, check IMAGE, restore IMAGE --target DISK), or: tui, rescan, shell, poweroff, reboot")
	in := bufio.NewScanner(e.o.Input)
	for {
		fmt.Fprint(e.con, "lifeboat> ")
		if !in.Scan() {
			return in.Err()
		}
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "poweroff", "reboot":
			return e.finish(ctx, map[string]Done{"poweroff": DonePowerOff, "reboot": DoneReboot}[f[0]])
		case "shell", "sh":
			e.run("/bbin/gosh")
		case "tui", "menu":
			if done, err := e.tuiSession(ctx); done {
				return err
			}
		case "rescan":
			e.mu.Lock()
			e.coldplug()
			if disks, err := engine.Disks(); err == nil {
				e.mountNew(disks)
			}
			for _, im := range e.findImages() {
				e.say("image: %s", im)
			}
			e.mu.Unlock()
		default:
			if f[0] == "lifeboat" {
				f = f[1:]
			}
			e.run("/proc/self/exe", f...)
		}
	}
}

// shellOn keeps u-root's shell running on a second console (Alt-F2 on a
// screen), so a user can look around while the main console is busy.
func (e *env) shellOn(tty string) {
	for range 100 {
		f, err := os.OpenFile(tty, os.O_RDWR, 0)
		if err != nil {
			return // no such console (serial-only machines)
		}
		c := exec.Command("/bbin/gosh")
		c.Stdin, c.Stdout, c.Stderr = f, f, f
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		fmt.Fprintf(f, "\nLifeboat rescue shell (lifeboat --help for the tool)\n")
		err = c.Run()
		f.Close()
		if err != nil && c.ProcessState == nil {
			return // gosh missing: nothing to restart
		}
	}
}

func (e *env) run(name string, args ...string) {
	c := exec.Command(name, args...)
	c.Stdin, c.Stdout, c.Stderr = e.o.Input, e.con, e.con
	if err := c.Run(); err != nil {
		e.say("(%v)", err)
	}
}
