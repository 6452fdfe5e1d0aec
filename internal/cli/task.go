package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/internal/version"
	"github.com/lifeboat-rescue/lifeboat/tasks"
)

// taskPaths are the configuration and state the task commands use: the
// platform's defaults, LIFEBOAT_CONFIG / LIFEBOAT_STATE, or --config and
// --state.
type taskPaths struct{ config, state string }

func (tp *taskPaths) add(fl *pflag.FlagSet) {
	fl.StringVar(&tp.config, "config", "", "the task configuration file (default "+tasks.DefaultPaths().Config+", or LIFEBOAT_CONFIG)")
	fl.StringVar(&tp.state, "state", "", "the folder of the tasks' state and log (default "+tasks.DefaultPaths().State+", or LIFEBOAT_STATE)")
}

func (tp *taskPaths) paths() tasks.Paths {
	p := tasks.DefaultPaths()
	if tp.config != "" {
		p.Config, _ = filepath.Abs(tp.config)
	}
	if tp.state != "" {
		p.State, _ = filepath.Abs(tp.state)
		p.Log = filepath.Join(p.State, "tasks.jsonl")
	}
	return p
}

// taskFlags are the settings add and edit take.
type taskFlags struct {
	t                            tasks.Task
	schedule, notify             []string
	encrypt, sectorBySector, chk bool
}

func (f *taskFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.t.Source, "source", "", "what to back up: disk:DEVICE, part:DEVICE or system")
	fl.StringVar(&f.t.Dest, "dest", "", "the folder the images go into (a local disk or a mounted share)")
	fl.StringVar(&f.t.Description, "description", "", "a note for people reading the task list")
	fl.StringArrayVar(&f.schedule, "schedule", nil, `when to run (repeatable): "daily 02:00", "weekly mon,fri 02:00", "monthly 1,15 02:00", "every 4h 08:00-18:00", "once 2026-12-24 02:00", startup, logon, shutdown, "usb [LABEL]"`)
	fl.StringVar(&f.t.Missed, "missed", "", "run (default: a run missed while the machine was off happens when it starts) or skip")
	fl.StringVar(&f.t.Scheme, "scheme", "", `kinds and retention: "full keep=3", "incremental full-every=7 keep-groups=4", "differential full-every=7 keep-groups=2", with optional max-size=SIZE (default "`+tasks.DefaultScheme+`")`)
	fl.StringVar(&f.t.Compression, "compression", "", "none, fast, normal (default) or high")
	fl.BoolVar(&f.encrypt, "encrypt", false, "encrypt the images (with --password-file)")
	fl.StringVar(&f.t.PasswordFile, "password-file", "", "the file holding the image password (the configuration names it, never holds it)")
	fl.StringVar(&f.t.Split, "split", "", "split images into parts of at most SIZE")
	fl.BoolVar(&f.sectorBySector, "sector-by-sector", false, "store every sector, used or not")
	fl.BoolVar(&f.chk, "check-after", false, "read every byte of each new image back before the run counts as a success")
	fl.StringVar(&f.t.Pre, "pre", "", "a command run before the backup (sh -c; cmd /C on Windows)")
	fl.StringVar(&f.t.Post, "post", "", "a command run after the backup, whatever its result")
	fl.StringVar(&f.t.PreTimeout, "pre-timeout", "", "stop the pre command after this long (default 30m)")
	fl.StringVar(&f.t.PostTimeout, "post-timeout", "", "stop the post command after this long (default 30m)")
	fl.StringVar(&f.t.OnPreFailure, "on-pre-failure", "", "skip (default: no backup when the pre command fails) or continue")
	fl.StringArrayVar(&f.notify, "notify", nil, "where the run's summary goes (repeatable): smtp://USER@HOST:587?to=ADDR&password-file=FILE, or a webhook https://HOST/PATH")
	fl.StringVar(&f.t.NotifyOn, "notify-on", "", "failure (default), success or always")
}

// apply sets on t what the command line gave (all of it for add, what
// was changed for edit).
func (f *taskFlags) apply(fl *pflag.FlagSet, t *tasks.Task) {
	set := func(name string, dst *string, v string) {
		if fl.Changed(name) {
			*dst = v
		}
	}
	set("source", &t.Source, f.t.Source)
	set("dest", &t.Dest, f.t.Dest)
	set("description", &t.Description, f.t.Description)
	set("missed", &t.Missed, f.t.Missed)
	set("scheme", &t.Scheme, f.t.Scheme)
	set("compression", &t.Compression, f.t.Compression)
	set("password-file", &t.PasswordFile, f.t.PasswordFile)
	set("split", &t.Split, f.t.Split)
	set("pre", &t.Pre, f.t.Pre)
	set("post", &t.Post, f.t.Post)
	set("pre-timeout", &t.PreTimeout, f.t.PreTimeout)
	set("post-timeout", &t.PostTimeout, f.t.PostTimeout)
	set("on-pre-failure", &t.OnPreFailure, f.t.OnPreFailure)
	set("notify-on", &t.NotifyOn, f.t.NotifyOn)
	if fl.Changed("dest") && t.Dest != "" && !engine.IsURL(t.Dest) {
		t.Dest, _ = filepath.Abs(t.Dest)
	}
	if fl.Changed("password-file") && t.PasswordFile != "" {
		t.PasswordFile, _ = filepath.Abs(t.PasswordFile)
	}
	nonEmpty := func(l []string) []string {
		var out []string
		for _, s := range l {
			if strings.TrimSpace(s) != "" {
				out = append(out, s)
			}
		}
		return out
	}
	if fl.Changed("schedule") {
		t.Schedule = nonEmpty(f.schedule)
	}
	if fl.Changed("notify") {
		t.Notify = nonEmpty(f.notify)
	}
	if fl.Changed("encrypt") {
		t.Encrypt = f.encrypt
	}
	if fl.Changed("sector-by-sector") {
		t.SectorBySector = f.sectorBySector
	}
	if fl.Changed("check-after") {
		t.CheckAfter = f.chk
	}
}

func loadTasks(tp *taskPaths) (*tasks.Config, error) {
	return tasks.Load(tp.paths().Config)
}

// findTask loads the configuration and the task called name in it.
func findTask(tp *taskPaths, name string) (*tasks.Config, *tasks.Task, error) {
	cfg, err := loadTasks(tp)
	if err != nil {
		return nil, nil, err
	}
	t, err := cfg.Find(name)
	return cfg, t, err
}

func taskCmd(e *env) *cobra.Command {
	var tp taskPaths
	c := &cobra.Command{
		Use:   "task",
		Short: "Backup tasks that run themselves: schedules, retention, pre/post commands, notifications",
	}
	tp.add(c.PersistentFlags())

	var af taskFlags
	add := &cobra.Command{
		Use:   "add NAME --source SOURCE --dest FOLDER [--schedule WHEN] [--scheme SCHEME] …",
		Short: "Add a task",
		Args:  exactArgs(1, "one task NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := loadTasks(&tp)
			if err != nil {
				return err
			}
			t := tasks.Task{Name: args[0]}
			af.apply(c.Flags(), &t)
			if err := cfg.Add(t); err != nil {
				return err
			}
			if err := cfg.Save(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Added task %s to %s\n", t.Name, cfg.Path())
			printNextRuns(e.stdout, &t)
			if len(t.Schedule) > 0 {
				fmt.Fprintf(e.stdout, "Run \"lifeboat task install\" to hand its schedule to the system's scheduler\n")
			}
			return nil
		},
	}
	af.add(add.Flags())

	var ef taskFlags
	edit := &cobra.Command{
		Use:   "edit NAME [--schedule WHEN] [--scheme SCHEME] …",
		Short: "Change the settings given of a task (the others stay)",
		Args:  exactArgs(1, "one task NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, t, err := findTask(&tp, args[0])
			if err != nil {
				return err
			}
			if c.Flags().NFlag() == 0 {
				return usagef("nothing to change: give the settings to change (lifeboat task edit --help lists them)")
			}
			ef.apply(c.Flags(), t)
			if err := t.Validate(); err != nil {
				return &usageError{err}
			}
			if err := cfg.Save(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Changed task %s in %s\n", t.Name, cfg.Path())
			if c.Flags().Changed("schedule") {
				fmt.Fprintf(e.stdout, "Run \"lifeboat task install\" again so the system's scheduler has the new schedule\n")
			}
			return nil
		},
	}
	ef.add(edit.Flags())

	var jsonOut bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tasks (and check the configuration file)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := loadTasks(&tp)
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(e, cfg.Tasks)
			}
			if len(cfg.Tasks) == 0 {
				fmt.Fprintf(e.stdout, "No tasks in %s; add one with lifeboat task add\n", cfg.Path())
				return nil
			}
			recs, _, _ := tasks.ReadLog(tp.paths().Log, "")
			last := map[string]tasks.Record{}
			for _, r := range recs {
				last[r.Task] = r
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSOURCE\tDEST\tSCHEDULE\tSCHEME\tLAST RUN")
			for _, t := range cfg.Tasks {
				lr := "never"
				if r, ok := last[t.Name]; ok {
					lr = r.Start.Local().Format("2006-01-02 15:04") + " " + r.Result
				}
				sc, _ := tasks.ParseScheme(t.Scheme)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Source, t.Dest, orNone(strings.Join(t.Schedule, "; ")), sc, lr)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&jsonOut, "json", false, "print the tasks as JSON")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a task, its next runs and the images it keeps",
		Args:  exactArgs(1, "one task NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			_, t, err := findTask(&tp, args[0])
			if err != nil {
				return err
			}
			ims, _ := tasks.Images(tp.paths().State, t.Name)
			if showJSON {
				return writeJSON(e, struct {
					Task   *tasks.Task   `json:"task"`
					Images []tasks.Entry `json:"images"`
				}{t, ims})
			}
			one := &tasks.Config{Tasks: []tasks.Task{*t}}
			b, err := one.Marshal()
			if err != nil {
				return err
			}
			_, body, _ := strings.Cut(string(b), "tasks:\n")
			fmt.Fprint(e.stdout, body)
			printNextRuns(e.stdout, t)
			sc, _ := tasks.ParseScheme(t.Scheme)
			kind, _ := sc.NextKind(ims)
			fmt.Fprintf(e.stdout, "The next run writes: %s backup\n", map[string]string{"full": "a full", "incremental": "an incremental", "differential": "a differential"}[kind])
			if len(ims) == 0 {
				fmt.Fprintln(e.stdout, "Images: none yet")
			} else {
				fmt.Fprintln(e.stdout, "Images (oldest first):")
				for _, im := range ims {
					fmt.Fprintf(e.stdout, "  %s  %-12s %9s  %s\n", im.Created.Local().Format("2006-01-02 15:04"), im.Kind, human(im.Size), im.File)
				}
			}
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print as JSON")

	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a task (its images stay where they are)",
		Args:  exactArgs(1, "one task NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := loadTasks(&tp)
			if err != nil {
				return err
			}
			if err := cfg.Remove(args[0]); err != nil {
				return err
			}
			if err := cfg.Save(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Removed task %s from %s; its images stay. Run \"lifeboat task install\" again to drop its schedule\n", args[0], cfg.Path())
			return nil
		},
	}

	var kind string
	var scheduled, ifDest bool
	run := &cobra.Command{
		Use:   "run NAME",
		Short: "Run a task now: exactly what its schedule runs",
		Args:  exactArgs(1, "one task NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			return runTask(c.Context(), e, &tp, args[0], kind, scheduled, ifDest)
		},
	}
	run.Flags().StringVar(&kind, "kind", "", "full, incremental or differential instead of what the scheme says is due")
	run.Flags().BoolVar(&scheduled, "scheduled", false, "started by the scheduler (recorded in the log)")
	run.Flags().BoolVar(&ifDest, "if-dest-present", false, "skip quietly when the destination folder is not there (USB triggers)")
	run.Flags().MarkHidden("if-dest-present")

	var root string
	install := &cobra.Command{
		Use:   "install",
		Short: "Hand the tasks' schedules to systemd (timers, udev rules) or Windows Task Scheduler; running it again updates them",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := loadTasks(&tp)
			if err != nil {
				return err
			}
			in, err := installer(e, &tp, root)
			if err != nil {
				return err
			}
			return in.Install(c.Context(), cfg)
		},
	}
	uninstall := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove every schedule task install set up (the tasks and images stay)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			in, err := installer(e, &tp, root)
			if err != nil {
				return err
			}
			return in.Uninstall(c.Context())
		},
	}
	for _, x := range []*cobra.Command{install, uninstall} {
		x.Flags().StringVar(&root, "root", "", "install the systemd units under this folder instead of / (for packaging); nothing is started")
	}

	var exportOut string
	export := &cobra.Command{
		Use:   "export [-o FILE]",
		Short: "Write the task configuration to a file (or standard output)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := loadTasks(&tp)
			if err != nil {
				return err
			}
			b, err := cfg.Marshal()
			if err != nil {
				return err
			}
			if exportOut == "" || exportOut == "-" {
				_, err = e.stdout.Write(b)
				return err
			}
			if err := os.WriteFile(exportOut, b, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Exported %d tasks to %s\n", len(cfg.Tasks), exportOut)
			return nil
		},
	}
	export.Flags().StringVarP(&exportOut, "output", "o", "", "the file to write")

	var replace bool
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Add the tasks of an exported file (--replace: tasks of the same name are replaced)",
		Args:  exactArgs(1, "one FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			in, err := tasks.Parse(args[0], b)
			if err != nil {
				return err
			}
			cfg, err := loadTasks(&tp)
			if err != nil {
				return err
			}
			for _, t := range in.Tasks {
				if replace {
					cfg.Remove(t.Name)
				}
				if err := cfg.Add(t); err != nil {
					return fmt.Errorf("%w (nothing was imported; --replace replaces tasks of the same name)", err)
				}
			}
			if err := cfg.Save(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Imported %d tasks into %s\n", len(in.Tasks), cfg.Path())
			return nil
		},
	}
	imp.Flags().BoolVar(&replace, "replace", false, "replace tasks of the same name")

	c.AddCommand(add, edit, list, show, remove, run, install, uninstall, export, imp)
	return c
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printNextRuns(w io.Writer, t *tasks.Task) {
	now := time.Now()
	for _, s := range t.Schedule {
		tr, err := tasks.ParseTrigger(s)
		if err != nil {
			continue
		}
		if n := tr.Next(now); !n.IsZero() {
			fmt.Fprintf(w, "Schedule %q: next run %s\n", s, n.Format("Mon 2006-01-02 15:04"))
		} else if !tr.Timed() {
			fmt.Fprintf(w, "Schedule %q: runs at each %s\n", s, map[string]string{"startup": "system start", "logon": "first logon of a user", "shutdown": "shutdown", "usb": "USB disk plugged in"}[tr.Kind])
		} else {
			fmt.Fprintf(w, "Schedule %q: in the past, it will not run\n", s)
		}
	}
}

func installer(e *env, tp *taskPaths, root string) (*tasks.Installer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the lifeboat program the scheduler should run: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	if root != "" {
		root, _ = filepath.Abs(root)
	}
	return &tasks.Installer{Paths: tp.paths(), Exe: exe, Root: root, Out: e.stdout}, nil
}

func runTask(ctx context.Context, e *env, tp *taskPaths, name, kind string, scheduled, ifDest bool) error {
	switch kind {
	case "", "full", "incremental", "differential":
	default:
		return usagef("--kind %s: use full, incremental or differential", kind)
	}
	r := &tasks.Runner{Paths: tp.paths(), Out: e.stdout, Trigger: "manual", Version: version.Version, Log: e.log(), IfDestPresent: ifDest}
	if scheduled {
		r.Trigger = "scheduled"
	}
	bar := newBar(e)
	r.Progress = bar
	rec, err := r.Run(ctx, name, kind)
	if rec == nil {
		return err
	}
	for _, w := range rec.Warnings {
		e.warn(w)
	}
	if err != nil {
		return err
	}
	switch {
	case rec.Result == "skipped":
		fmt.Fprintf(e.stdout, "Task %s skipped: %s\n", name, rec.Error)
	case rec.Image != "":
		fmt.Fprintf(e.stdout, "Task %s: %s backup %s (%s stored) in %s\n", name, rec.Kind, rec.Image, human(rec.Stored), rec.End.Sub(rec.Start).Round(100*time.Millisecond))
		if rec.Merged != "" {
			fmt.Fprintf(e.stdout, "Merged the newest point into the full backup %s\n", rec.Merged)
		}
		for _, d := range rec.Deleted {
			fmt.Fprintf(e.stdout, "Deleted by the scheme: %s\n", d)
		}
	}
	return nil
}

func logCmd(e *env) *cobra.Command {
	var tp taskPaths
	var jsonOut, full bool
	var last int
	c := &cobra.Command{
		Use:   "log [TASK]",
		Short: "The tasks' runs: start, end, kind, bytes, result, warnings, images written and deleted",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			p := tp.paths()
			recs, bad, err := tasks.ReadLog(p.Log, name)
			if err != nil {
				return err
			}
			if last > 0 && len(recs) > last {
				recs = recs[len(recs)-last:]
			}
			if jsonOut {
				if recs == nil {
					recs = []tasks.Record{}
				}
				return writeJSON(e, recs)
			}
			if bad > 0 {
				e.warn(fmt.Sprintf("%d lines of %s do not parse and are left out", bad, p.Log))
			}
			if len(recs) == 0 {
				what := "no task has run yet"
				if name != "" {
					what = "task " + name + " has not run yet"
				}
				fmt.Fprintf(e.stdout, "The log %s is empty: %s\n", p.Log, what)
				return nil
			}
			if full {
				for _, r := range recs {
					fmt.Fprintln(e.stdout, r.Summary())
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "START\tTASK\tKIND\tRESULT\tTOOK\tSTORED\tIMAGE / ERROR")
			for _, r := range recs {
				what := filepath.Base(r.Image)
				if r.Error != "" {
					what = r.Error
				}
				if n := len(r.Deleted); n > 0 {
					what += fmt.Sprintf(" (deleted %d)", n)
				}
				if n := len(r.Warnings); n > 0 {
					what += fmt.Sprintf(" (%d warnings)", n)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Start.Local().Format("2006-01-02 15:04:05"), r.Task, orNone(r.Kind), r.Result,
					r.End.Sub(r.Start).Round(time.Second), human(r.Stored), what)
			}
			return tw.Flush()
		},
	}
	tp.add(c.Flags())
	c.Flags().BoolVar(&jsonOut, "json", false, "print the records as JSON")
	c.Flags().BoolVar(&full, "full", false, "print every record in full: warnings, pre/post output, deletions")
	c.Flags().IntVarP(&last, "last", "n", 0, "only the last N runs")
	return c
}
