package rescue

import "io"

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
