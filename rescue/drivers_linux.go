//go:build linux

package rescue

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"

	"github.com/lifeboat-rescue/lifeboat/rescue/kernel"
)

// drivers loads kernel modules for the hardware present, as udev's
// coldplug does. coldplug and settle are called by one goroutine at a time
// (Run before ready, then under env.mu); load may be called from several
// at once, and is, by coldplug itself.
type drivers struct {
	moduleDir string // lib/modules/<release>
	sysfs     string // "/sys"; a fake tree in tests
	// probe loads one module and what it depends on; kmodule by default,
	// a fake in tests.
	probe   func(name, params string) error
	aliases *kernel.Aliases
	seen    map[string]bool // modalias files already matched; coldplug's own

	mu      sync.Mutex // guards the fields below: modules load side by side
	loaded  map[string]bool
	nloaded int
	usb     bool // a USB host controller driver was loaded
}

func newDrivers(moduleDir string) *drivers {
	return &drivers{
		moduleDir: moduleDir,
		sysfs:     "/sys",
		probe: func(name, params string) error {
			return kmodule.ProbeOptions(name, params, kmodule.ProbeOpts{RootDir: "/", KVer: filepath.Base(moduleDir)})
		},
		seen:   map[string]bool{},
		loaded: map[string]bool{},
	}
}

// settle matches every device's modalias against modules.alias and loads
// the matching modules, again while loading them makes new devices appear
// (a USB controller brings its disks), until nothing new has appeared for
// a moment. Filesystem modules are loaded when a filesystem needs them
// (tryMount).
func (d *drivers) settle() {
	f, err := os.Open(filepath.Join(d.moduleDir, "modules.alias"))
	if err == nil {
		d.aliases, err = kernel.ParseAliases(f)
		f.Close()
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		slog.Debug("modules.alias", "err", err)
	}
	quiet := 0
	deadline := time.Now().Add(8 * time.Second)
	// USB devices appear a while after their controller's driver loads.
	for time.Now().Before(deadline) && (quiet < 2 || quiet < 5 && d.usbSeen()) {
		if d.coldplug() == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(75 * time.Millisecond)
	}
}

// usbSeen reports whether a USB host controller driver was loaded.
func (d *drivers) usbSeen() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.usb
}

// count is how many modules loaded.
func (d *drivers) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nloaded
}

// load loads a module (either spelling of its name) and its dependencies,
// once: a module that failed is not tried again. It reports whether the
// module loaded now.
func (d *drivers) load(name string) bool {
	name = kernel.NormalizeName(name)
	d.mu.Lock()
	if d.loaded[name] {
		d.mu.Unlock()
		return false
	}
	d.loaded[name] = true
	if strings.HasSuffix(name, "hci_pci") || strings.HasSuffix(name, "hci_hcd") {
		d.usb = true
	}
	d.mu.Unlock()
	params := ""
	if name == "usb_storage" {
		params = "delay_use=0" // do not wait a second before scanning a stick
	}
	if err := d.probe(name, params); err != nil {
		slog.Debug("module", "name", name, "err", err)
		return false
	}
	d.mu.Lock()
	d.nloaded++
	d.mu.Unlock()
	return true
}

// coldplug matches the modaliases not seen before, loads what they need
// and returns how many new devices it found.
func (d *drivers) coldplug() int {
	n := 0
	var todo []string
	files, _ := filepath.Glob(filepath.Join(d.sysfs, "bus/*/devices/*/modalias"))
	for _, f := range files {
		if d.seen[f] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		d.seen[f] = true
		n++
		for _, m := range d.aliases.Match(strings.TrimSpace(string(b))) {
			if !slices.Contains(todo, m) {
				todo = append(todo, m)
			}
		}
	}
	// Drivers probe their devices while they load, slowly on some
	// hardware (an IDE controller): load independent ones side by side.
	var wg sync.WaitGroup
	for _, m := range todo {
		wg.Go(func() { d.load(m) })
	}
	wg.Wait()
	return n
}
