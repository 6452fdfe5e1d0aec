//go:build linux

package rescue

import (
	"bufio"
	"log/slog"

	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
)

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
