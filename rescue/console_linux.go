//go:build linux

package rescue

import (
	"bufio"
	"context"
	"fmt"

	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

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

// console offers the user interface lifeboat.ui asks for: the text UI
// (default) or the lifeboat> prompt. Leaving the text UI leads to the
// prompt, whose `tui` command comes back.
func (e *env) console(ctx context.Context) error {
	if e.ui == UIPrompt {
		return e.prompt(ctx)
	}
	// Late disks (USB) are mounted and listed first: the text UI owns the
	// console once it starts.
	if e.settled != nil {
		<-e.settled
	}
	if done, err := e.tuiSession(ctx); done {
		return err
	}
	return e.prompt(ctx)
}

// finish carries out the done action.
func (e *env) finish(ctx context.Context, d Done) error {
	if e.o.NoPowerOff {
		return nil
	}
	switch d {
	case DonePowerOff, DoneReboot:
		// The prompt does not wait for late disks: watch may still be
		// mounting them.
		e.mu.Lock()
		for _, m := range e.mounts {
			unix.Unmount(m.dir, 0)
		}
		e.mu.Unlock()
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
		e.conMu.Lock() // watch may be printing late disks
		fmt.Fprint(e.con, "lifeboat> ")
		e.conMu.Unlock()
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
			e.drv.coldplug()
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
	// Not command.Run: the command's output went to the console, the user
	// typed its argv, and "(exit status N)" is the line the prompt has
	// always printed (qemu-tests read it).
	if err := c.Run(); err != nil {
		e.say("(%v)", err)
	}
}
