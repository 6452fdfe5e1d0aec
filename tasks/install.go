package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/command"
)

// Installer puts the tasks' schedules into the platform's scheduler.
type Installer struct {
	Paths Paths
	Exe   string // the lifeboat program the scheduler runs
	// Root is where /etc lies (systemd): "/" or a folder for packaging
	// and tests; units under another root are written and enabled there
	// (systemctl --root) but nothing is started.
	Root string
	Out  io.Writer
	Now  func() time.Time
	// Run runs the scheduler's tools (systemctl, udevadm, schtasks);
	// tests of the Windows path give their own.
	Run func(ctx context.Context, argv ...string) error
}

func (in *Installer) say(format string, args ...any) {
	if in.Out != nil {
		fmt.Fprintf(in.Out, format+"\n", args...)
	}
}

func (in *Installer) run(ctx context.Context, argv ...string) error {
	if in.Run != nil {
		return in.Run(ctx, argv...)
	}
	return command.Combined(ctx, exec.CommandContext(ctx, argv[0], argv[1:]...))
}

// env is the environment a scheduled run needs to find this configuration
// and state when they are not the defaults.
func (in *Installer) env() []string {
	d := DefaultPathsFor(runtime.GOOS)
	var env []string
	if in.Paths.Config != d.Config {
		env = append(env, "LIFEBOAT_CONFIG="+in.Paths.Config)
	}
	if in.Paths.State != d.State {
		env = append(env, "LIFEBOAT_STATE="+in.Paths.State)
	}
	return env
}

// DefaultPathsFor is DefaultPaths without the environment's overrides.
func DefaultPathsFor(goos string) Paths {
	if goos == "windows" {
		base := filepath.Join(orDefault(os.Getenv("ProgramData"), `C:\ProgramData`), "Lifeboat")
		return Paths{Config: filepath.Join(base, "tasks.yaml"), State: filepath.Join(base, "state"), Log: filepath.Join(base, "log", "tasks.jsonl")}
	}
	return Paths{Config: "/etc/lifeboat/tasks.yaml", State: "/var/lib/lifeboat/tasks", Log: "/var/log/lifeboat/tasks.jsonl"}
}

// manifest is what install put in place, so that the next install and
// uninstall remove exactly that.
type manifest struct {
	Files []string `json:"files,omitempty"` // systemd units and udev rules
	Units []string `json:"units,omitempty"` // enabled systemd units
	Tasks []string `json:"tasks,omitempty"` // Task Scheduler paths
}

func (in *Installer) manifestPath() string { return filepath.Join(in.Paths.State, "installed.json") }

func (in *Installer) loadManifest() manifest {
	var m manifest
	if b, err := os.ReadFile(in.manifestPath()); err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

func (in *Installer) saveManifest(m manifest) error {
	b, _ := json.MarshalIndent(m, "", "  ")
	return writeAtomic(in.manifestPath(), append(b, '\n'), 0o644)
}

// Install makes the scheduler run every task of cfg as its schedules say,
// and removes what an earlier install set up for tasks that are gone or
// have no schedule now. Running it twice changes nothing.
func (in *Installer) Install(ctx context.Context, cfg *Config) error {
	if runtime.GOOS == "windows" {
		return in.installWindows(ctx, cfg)
	}
	return in.installSystemd(ctx, cfg)
}

// Uninstall removes everything Install set up.
func (in *Installer) Uninstall(ctx context.Context) error {
	return in.Install(ctx, &Config{})
}

func (in *Installer) root() string { return orDefault(in.Root, "/") }

func (in *Installer) live() bool {
	if in.root() != "/" {
		return false
	}
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

func (in *Installer) systemctl(ctx context.Context, args ...string) error {
	if !in.live() {
		args = append([]string{"--root=" + in.root()}, args...)
	}
	return in.run(ctx, append([]string{"systemctl"}, args...)...)
}

func (in *Installer) installSystemd(ctx context.Context, cfg *Config) error {
	old := in.loadManifest()
	var m manifest
	dirs := map[string]string{"systemd": filepath.Join(in.root(), "etc/systemd/system"), "udev": filepath.Join(in.root(), "etc/udev/rules.d")}
	// Units of ours the manifest does not know (a state folder lost or
	// moved) are found by their names.
	found, _ := filepath.Glob(filepath.Join(dirs["systemd"], UnitPrefix+"*"))
	rules, _ := filepath.Glob(filepath.Join(dirs["udev"], "90-"+UnitPrefix+"*.rules"))
	for _, f := range append(found, rules...) {
		if !slices.Contains(old.Files, f) {
			old.Files = append(old.Files, f)
		}
		if n := filepath.Base(f); (strings.HasSuffix(n, ".timer") || strings.HasSuffix(n, "-shutdown.service") || strings.HasSuffix(n, "-logon.service")) && !slices.Contains(old.Units, n) {
			old.Units = append(old.Units, n)
		}
	}
	var enable []string
	changed := false
	for i := range cfg.Tasks {
		t := &cfg.Tasks[i]
		if len(t.Schedule) == 0 {
			continue
		}
		for _, u := range SystemdUnits(t, in.Exe, in.env()) {
			p := filepath.Join(dirs[u.Dir], u.Name)
			m.Files = append(m.Files, p)
			if u.Enable {
				m.Units = append(m.Units, u.Name)
				enable = append(enable, u.Name)
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, u.Content) {
				continue
			}
			if err := writeAtomic(p, u.Content, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
			changed = true
			in.say("Wrote %s", p)
		}
	}
	// What the last install enabled and this one does not: disabled,
	// then removed.
	for _, u := range old.Units {
		if !slices.Contains(m.Units, u) {
			if err := in.systemctl(ctx, "disable", u); err != nil {
				in.say("WARNING: systemctl disable %s: %v", u, err)
			}
			if in.live() {
				in.systemctl(ctx, "stop", u)
			}
		}
	}
	for _, f := range old.Files {
		if !slices.Contains(m.Files, f) {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			changed = true
			in.say("Removed %s", f)
		}
	}
	if in.live() && changed {
		if err := in.systemctl(ctx, "daemon-reload"); err != nil {
			return err
		}
		in.run(ctx, "udevadm", "control", "--reload")
	}
	for _, u := range enable {
		if err := in.systemctl(ctx, "enable", u); err != nil {
			return err
		}
		if in.live() && (strings.HasSuffix(u, ".timer") || strings.HasSuffix(u, "-shutdown.service")) {
			if err := in.systemctl(ctx, "start", u); err != nil {
				return err
			}
		}
	}
	if !in.live() && len(enable) > 0 {
		in.say("systemd is not running on %s: the units are in place and enabled, and start with the next boot", in.root())
	}
	if len(m.Files) == 0 && len(old.Files) == 0 {
		in.say("No task has a schedule: nothing to install")
	}
	return in.saveManifest(m)
}

func (in *Installer) installWindows(ctx context.Context, cfg *Config) error {
	old := in.loadManifest()
	var m manifest
	now := time.Now()
	if in.Now != nil {
		now = in.Now()
	}
	dir, err := os.MkdirTemp("", "lifeboat-tasks-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for i := range cfg.Tasks {
		t := &cfg.Tasks[i]
		if len(t.Schedule) == 0 {
			continue
		}
		p := filepath.Join(dir, fileName(t.Name)+".xml")
		if err := os.WriteFile(p, WindowsTask(t, in.Exe, now), 0o600); err != nil {
			return err
		}
		if err := in.run(ctx, "schtasks", "/Create", "/TN", TaskPath(t.Name), "/XML", p, "/F"); err != nil {
			return fmt.Errorf("register task %s with Task Scheduler (run lifeboat from an elevated prompt): %w", t.Name, err)
		}
		in.say("Registered %s in Task Scheduler", TaskPath(t.Name))
		m.Tasks = append(m.Tasks, TaskPath(t.Name))
	}
	for _, tp := range old.Tasks {
		if !slices.Contains(m.Tasks, tp) {
			if err := in.run(ctx, "schtasks", "/Delete", "/TN", tp, "/F"); err != nil {
				in.say("WARNING: remove %s from Task Scheduler: %v", tp, err)
				m.Tasks = append(m.Tasks, tp) // tried again next time
				continue
			}
			in.say("Removed %s from Task Scheduler", tp)
		}
	}
	if len(cfg.Tasks) > 0 && len(m.Tasks) == 0 {
		in.say("No task has a schedule: nothing to install")
	}
	return in.saveManifest(m)
}
