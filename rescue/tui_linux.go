//go:build linux

package rescue

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/tui"
)

// runTUI shows the text UI on /dev/console until the user leaves it.
func (e *env) runTUI(ctx context.Context) (tui.Action, error) {
	f, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return tui.ActionQuit, fmt.Errorf("open the console: %w", err)
	}
	defer f.Close()
	// A serial console does not know its size: tell the line discipline
	// 80×25, so full-screen programs (the UI, the shell) agree on it.
	if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && (ws.Row == 0 || ws.Col == 0) {
		unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 25, Col: 80})
	}
	e.conMu.Lock()
	e.tuiOn = true
	e.conMu.Unlock()
	defer func() {
		e.conMu.Lock()
		e.tuiOn = false
		held := e.held
		e.held = nil
		e.conMu.Unlock()
		for _, l := range held {
			e.say("%s", l)
		}
	}()
	return tui.Run(ctx, tui.Options{
		Version:      e.o.Version,
		Rescue:       true,
		Input:        f,
		Output:       f,
		Colour:       tui.ColourTerm(os.Getenv("TERM")),
		Images:       e.rescanImages,
		Destinations: e.destinations,
		PrepareWrite: e.prepareWrite,
		Shell: func() *exec.Cmd {
			c := exec.Command("/bbin/gosh")
			c.Stdin, c.Stdout, c.Stderr = f, f, f
			return c
		},
		Network: &tui.Network{DHCP: func(name string) error { return e.dhcpAgain(ctx, name) }, SetAddress: setAddress},
	})
}

// rescanImages loads drivers for new hardware, mounts new disks and lists
// the images on every mounted filesystem.
func (e *env) rescanImages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drv.coldplug()
	if disks, err := engine.Disks(); err == nil {
		e.mountNew(disks)
	}
	return e.findImages()
}

// destinations are the mounted filesystems a backup can be written to
// (ntfs-3g mounts stay read-only).
func (e *env) destinations() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, m := range e.mounts {
		switch m.fstype {
		case "ext2", "ext3", "ext4", "vfat", "exfat":
			out = append(out, m.dir)
		}
	}
	return out
}

// prepareWrite makes a target writable: a disk (or partition) loses our
// read-only mounts, unless it holds what the operation reads; a folder's
// filesystem is mounted read-write.
func (e *env) prepareWrite(target string, sources []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !strings.HasPrefix(target, "/dev/") {
		for i, m := range e.mounts {
			if target != m.dir && !strings.HasPrefix(target, m.dir+"/") {
				continue
			}
			if err := unix.Unmount(m.dir, 0); err != nil {
				return fmt.Errorf("remount %s read-write: unmount %s: %w", m.dev, m.dir, err)
			}
			fstype := m.fstype
			if strings.HasPrefix(fstype, "ext") {
				fstype = "ext4"
			}
			if err := unix.Mount(m.dev, m.dir, fstype, 0, ""); err != nil {
				unix.Mount(m.dev, m.dir, fstype, unix.MS_RDONLY, "")
				return fmt.Errorf("mount %s read-write at %s: %w; the filesystem may need a check (fsck) first, or choose another folder", m.dev, m.dir, err)
			}
			e.mounts[i].fstype = m.fstype
			return os.MkdirAll(target, 0o755)
		}
		return nil
	}
	disk := target
	if disks, err := engine.Disks(); err == nil {
		for _, d := range disks {
			for _, p := range d.Partitions {
				if p.Path == target {
					disk = d.Path
				}
			}
		}
	}
	for _, m := range e.mounts {
		if m.disk != disk {
			continue
		}
		for _, s := range sources {
			if strings.HasPrefix(s, m.dir+"/") {
				return fmt.Errorf("%s is on %s (%s), the disk chosen as target; choose another target disk", s, m.dev, disk)
			}
		}
	}
	return e.unmountDisk(disk)
}

// dhcpAgain asks for a lease on one interface in the background.
func (e *env) dhcpAgain(ctx context.Context, name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	go e.dhcp(ctx, l)
	return nil
}

// setAddress gives an interface a static address and, optionally, a
// default route.
func setAddress(name, cidr, gateway string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return fmt.Errorf("address %q: write it as 192.168.1.20/24: %w", cidr, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	if err := netlink.AddrReplace(l, a); err != nil {
		return fmt.Errorf("set %s on %s: %w", cidr, name, err)
	}
	if gateway != "" {
		gw := net.ParseIP(gateway)
		if gw == nil {
			return fmt.Errorf("gateway %q is not an IP address", gateway)
		}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("default route via %s: %w", gateway, err)
		}
	}
	return nil
}

// tuiSession runs the text UI once. A power action chosen in it is carried
// out (done is then true); otherwise the caller goes on to the prompt.
func (e *env) tuiSession(ctx context.Context) (done bool, err error) {
	act, err := e.runTUI(ctx)
	if err != nil {
		e.say("lifeboat: the text UI stopped: %v", err)
	}
	switch act {
	case tui.ActionPowerOff:
		return true, e.finish(ctx, DonePowerOff)
	case tui.ActionReboot:
		return true, e.finish(ctx, DoneReboot)
	}
	return false, nil
}
