package tui

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// Backend is the part of the engine the UI calls. Engine is the real one;
// tests pass a fake so screens do not depend on the machine's disks. The
// long methods are called from a goroutine of their own, never from the
// UI's; they call o.Progress and o.Confirm from that goroutine.
type Backend interface {
	Disks() ([]engine.DiskInfo, error)
	Info(ctx context.Context, image string, password func() ([]byte, error)) (*engine.ImageInfo, error)
	Restore(ctx context.Context, o engine.RestoreOptions) (*engine.RestoreResult, error)
	Clone(ctx context.Context, o engine.CloneOptions) (*engine.CloneResult, error)
	Backup(ctx context.Context, o engine.BackupOptions) (*engine.BackupResult, error)
	Check(ctx context.Context, o engine.CheckOptions) (*engine.CheckResult, error)
	// ExploreParts, ListFiles and Extract read files from an image
	// (Explore image).
	ExploreParts(ctx context.Context, o engine.ExploreOptions) ([]engine.ViewPart, error)
	ListFiles(ctx context.Context, o engine.ExploreOptions, part int, dir string) (*engine.Listing, error)
	Extract(ctx context.Context, o engine.ExtractOptions) (*engine.ExtractResult, error)
}

// Engine is the Backend that calls the engine.
type Engine struct{}

func (Engine) Disks() ([]engine.DiskInfo, error) { return engine.Disks() }
func (Engine) Info(ctx context.Context, image string, pw func() ([]byte, error)) (*engine.ImageInfo, error) {
	return engine.Info(ctx, image, pw)
}
func (Engine) Restore(ctx context.Context, o engine.RestoreOptions) (*engine.RestoreResult, error) {
	return engine.Restore(ctx, o)
}
func (Engine) Clone(ctx context.Context, o engine.CloneOptions) (*engine.CloneResult, error) {
	return engine.Clone(ctx, o)
}
func (Engine) Backup(ctx context.Context, o engine.BackupOptions) (*engine.BackupResult, error) {
	return engine.Backup(ctx, o)
}
func (Engine) Check(ctx context.Context, o engine.CheckOptions) (*engine.CheckResult, error) {
	return engine.Check(ctx, o)
}
func (Engine) ExploreParts(ctx context.Context, o engine.ExploreOptions) ([]engine.ViewPart, error) {
	v, err := engine.OpenView(ctx, o)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return v.Parts, nil
}
func (Engine) ListFiles(ctx context.Context, o engine.ExploreOptions, part int, dir string) (*engine.Listing, error) {
	return engine.ListFiles(ctx, o, part, dir)
}
func (Engine) Extract(ctx context.Context, o engine.ExtractOptions) (*engine.ExtractResult, error) {
	return engine.Extract(ctx, o)
}

// Iface is a network interface as the Network screen shows it.
type Iface struct {
	Name  string
	MAC   string
	Up    bool
	Addrs []string // CIDR notation
}

// Network is how the rescue environment lets the Network screen act. A nil
// *Network (a running system) makes the screen read-only.
type Network struct {
	// DHCP asks for a lease on the interface again, in the background; it
	// returns once the request is under way.
	DHCP func(iface string) error
	// SetAddress sets a static address ("192.168.1.20/24") and, when
	// gateway is not empty, the default route.
	SetAddress func(iface, cidr, gateway string) error
}

// Action is what the caller of Run should do after the UI ended.
type Action int

const (
	ActionQuit     Action = iota // the user left the UI (to the prompt, or the shell that started it)
	ActionPowerOff               // power the machine off
	ActionReboot                 // reboot it
)

func (a Action) String() string {
	switch a {
	case ActionQuit:
		return "quit"
	case ActionPowerOff:
		return "poweroff"
	case ActionReboot:
		return "reboot"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Options configure the UI. The zero value runs on a host's terminal
// against the real engine.
type Options struct {
	Version string
	Backend Backend // default Engine{}
	// Images lists the image files found (first parts of *.lbi); it is
	// called each time an image is to be picked, so it may rescan.
	Images func() []string
	// Destinations lists folders a backup may be written to (writable
	// filesystems on other disks); "type a folder" is always offered.
	Destinations func() []string
	// FolderImages lists the images (first parts of *.lbi) directly in a
	// backup folder, to offer an incremental or differential backup onto
	// an earlier one of the same source; default reads the folder.
	FolderImages func(dir string) []string
	// PrepareWrite is called before a restore or clone writes to target
	// (the rescue environment unmounts its read-only mounts of that disk)
	// with the files or devices the operation reads, and before a backup
	// writes into a folder (target is the folder: the rescue environment
	// mounts it read-write). An error is shown and nothing happens.
	PrepareWrite func(target string, sources []string) error
	// Shell makes the command the Shell item runs; nil runs $SHELL or
	// /bin/sh (cmd.exe on Windows).
	Shell func() *exec.Cmd
	// Rescue says the UI runs in the rescue environment: Reboot and Power
	// off end Run with that Action. On a running system they only explain
	// why not.
	Rescue bool
	// Network lets the Network screen retry DHCP and set addresses; nil is
	// read-only. Interfaces defaults to net.Interfaces.
	Network    *Network
	Interfaces func() ([]Iface, error)
	// Colour allows colours and reverse video; without it (serial
	// consoles, TERM=vt100/linux/dumb) screens are plain text.
	Colour bool
	// Input and Output default to os.Stdin and os.Stdout.
	Input  io.Reader
	Output io.Writer
	// Width and Height are the screen size used when the terminal's cannot
	// be read (a serial console reports 0×0); default 80×25.
	Width, Height int
	// Now names default image files; tests fix it.
	Now func() string
}

func (o *Options) defaults() {
	if o.Backend == nil {
		o.Backend = Engine{}
	}
	if o.Images == nil {
		o.Images = func() []string { return nil }
	}
	if o.Destinations == nil {
		o.Destinations = func() []string { return nil }
	}
	if o.FolderImages == nil {
		o.FolderImages = engine.ListImages
	}
	if o.Interfaces == nil {
		o.Interfaces = hostInterfaces
	}
	if o.Shell == nil {
		o.Shell = defaultShell
	}
	if o.Width <= 0 {
		o.Width = 80
	}
	if o.Height <= 0 {
		o.Height = 25
	}
}

func defaultShell() *exec.Cmd {
	if runtime.GOOS == "windows" {
		return exec.Command("cmd.exe")
	}
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	return exec.Command(sh)
}

func hostInterfaces() ([]Iface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []Iface
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		x := Iface{Name: i.Name, MAC: i.HardwareAddr.String(), Up: i.Flags&net.FlagUp != 0}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			x.Addrs = append(x.Addrs, a.String())
		}
		out = append(out, x)
	}
	return out, nil
}

// FindImages returns a function listing the images (*.lbi first parts)
// under the roots, a few folders deep; for `lifeboat tui` on a host the
// roots are --images folders and /media and /mnt.
func FindImages(roots ...string) func() []string {
	return func() []string {
		var out []string
		seen := map[string]bool{}
		for _, root := range roots {
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				if d.IsDir() && strings.Count(strings.TrimPrefix(p, root), string(filepath.Separator)) > 4 {
					return filepath.SkipDir
				}
				if !d.IsDir() && engine.IsImageName(p) && !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
				return nil
			})
		}
		sort.Strings(out)
		return out
	}
}
