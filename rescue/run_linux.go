//go:build linux

package rescue

import (
	"context"
	"fmt"
	"io"
	"log"

	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

type env struct {
	o       Options
	con     io.Writer
	conMu   sync.Mutex
	start   time.Time
	mounts  []mount
	drv     *drivers
	known   map[string]bool // disks already mounted and shown
	settled chan struct{}   // closed when no new hardware appears
	net     netState
	// platform is how the firmware started us: Secure Boot and lockdown.
	platform Platform
	debug    bool // lifeboat.debug on the command line: library logs to the console
	// mu guards mounts, known and drv.coldplug once watch runs (late
	// USB disks are mounted from its goroutine while the console runs).
	mu sync.Mutex
	ui UI
	// held collects console lines while the text UI owns the console
	// (guarded by conMu); they are printed when it ends.
	tuiOn bool
	held  []string
}

// Run brings the environment up and runs the job or the prompt. It returns
// only for DoneShell or when the user leaves the prompt.

func Run(ctx context.Context, o Options) error {
	e := &env{o: o, start: time.Now(), known: map[string]bool{}, net: newNetState()}
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
	e.drv = newDrivers(e.o.ModuleDir)
	pp := sysPlatform
	pp.load = func(m string) { e.drv.load(m) }
	e.platform = readPlatform(pp)
	e.say("%s", e.platform.Console())
	t0 := time.Now()
	e.drv.settle()
	// No device asks for loop or fuse: a restore onto a larger disk grows
	// the filesystem through a loop device over its partition, and fails
	// without it ("no loop devices"); --layout fit shrinks filesystems on
	// a view served over FUSE, and ls/extract/mount read images so.
	e.drv.load("loop")
	e.drv.load("fuse")
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
	// Guest clock: uptime when our init started and now, for boot
	// benchmarks. New fields go at the end: tests parse the line.
	e.say("%s version=%s disks=%d images=%d modules=%d drivers_ms=%d mount_ms=%d init_ms=%d uptime_start=%.3f uptime_ready=%.3f %s",
		ReadyMarker, o.Version, len(disks), len(images), e.drv.count(), driversMS, mountMS, time.Since(e.start).Milliseconds(), upStart, uptime(), e.platform.Fields())
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
