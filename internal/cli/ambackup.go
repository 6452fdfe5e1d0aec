package cli

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/tasks"
)

// The seed product's command line (AMBackup.exe), translated into
// Lifeboat's own commands: the translation is printed, then run as if it
// had been typed. Nothing here reaches the engine but through those
// commands.
const ambackupHelp = `lifeboat ambackup: the seed product's command line (AMBackup), translated into lifeboat's commands.

  /b new /t system|disk|part /s SOURCE /d FOLDER [/n NAME] [/a COMMENT] [/c 0|1|2] [/e] [/m MB]
        create backup task NAME (lifeboat task add) and run its first, full backup (lifeboat task run)
  /b full|inc|dif /n NAME    (or /s NAME, or /s IMAGE the task wrote)
        run the task now as a full, incremental or differential backup (lifeboat task run --kind)
  /l    list the backup tasks (lifeboat task list)
  /l0   list the disks, numbered from 0 as /s and /d take them (lifeboat disks)
  /c /t disk|part /s SOURCE /d TARGET
        clone (lifeboat clone disk|part SOURCE --target TARGET)
  /r /t disk|part /s IMAGE /d TARGET
        restore (lifeboat restore IMAGE --target TARGET)
  /?    this help

SOURCE and TARGET: a disk number (0, 1, … in the order /l0 lists them), DISK:PARTITION
(1:2, partitions numbered from 1), a drive letter on Windows (C:), or a device path.
/c 0|1|2 is compression none, normal, high; /e is a sector-by-sector backup; /m MB splits
the image into parts of MB megabytes.

Not honoured, and said so: /r 0|1 within a backup (no such setting in lifeboat), /k, /h,
/v, /i and any option not listed here (refused). File backups (/t file) are not a
lifeboat concept yet. Add -y after "ambackup" to clone or restore without a prompt.
`

func ambackupCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:                "ambackup /b|/c|/r|/l … (the seed product's syntax; /? for help)",
		Short:              "Accept the seed product's command line (AMBackup) and run what it means in lifeboat",
		DisableFlagParsing: true,
		RunE: func(c *cobra.Command, args []string) error {
			sub := &env{stdin: e.stdin, stdout: e.stdout, stderr: e.stderr, password: e.password, interactive: e.interactive}
			// lifeboat's own switches, wherever they are.
			args = slices.DeleteFunc(slices.Clone(args), func(a string) bool {
				switch a {
				case "-y", "--yes":
					sub.yes = true
				case "-q", "--quiet":
					sub.quiet = true
				case "-v", "--verbose":
					sub.verbose = true
				default:
					return false
				}
				return true
			})
			argv, notes, err := translateAMBackup(args, disksForAMBackup)
			if err != nil {
				return err
			}
			for _, n := range notes {
				e.warn(n)
			}
			if argv == nil {
				fmt.Fprint(e.stdout, ambackupHelp)
				return nil
			}
			for _, a := range argv {
				fmt.Fprintf(e.stderr, "→ lifeboat %s\n", joinArgs(a))
				var flags []string
				if sub.yes {
					flags = append(flags, "--yes")
				}
				if sub.quiet {
					flags = append(flags, "--quiet")
				}
				if sub.verbose {
					flags = append(flags, "--verbose")
				}
				if err := execute(c.Context(), sub, append(flags, a...)); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func joinArgs(a []string) string {
	var out []string
	for _, s := range a {
		if s == "" || strings.ContainsAny(s, " \t\"'") {
			s = strconv.Quote(s)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// disksForAMBackup lists the disks' device paths in the order "lifeboat
// disks" shows them: what disk numbers index.
func disksForAMBackup() ([]string, error) {
	ds, err := engine.Disks()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Path)
	}
	return out, nil
}

type amArgs struct {
	op, verb string
	opts     map[string]string
	flags    map[string]bool
}

// parseAMBackup reads "/x value" pairs; the first switch is the
// operation. Switches are case-blind, as on Windows.
func parseAMBackup(args []string) (*amArgs, error) {
	a := &amArgs{opts: map[string]string{}, flags: map[string]bool{}}
	takesValue := map[string]bool{"/t": true, "/s": true, "/d": true, "/n": true, "/a": true, "/c": true, "/m": true, "/r": true}
	for i := 0; i < len(args); i++ {
		sw := strings.ToLower(args[i])
		if !strings.HasPrefix(sw, "/") && !strings.HasPrefix(sw, "-") {
			return nil, usagef("ambackup: %q is not a switch (/b, /t, /s, …; /? lists them)", args[i])
		}
		sw = "/" + strings.TrimLeft(sw, "/-")
		if a.op == "" {
			switch sw {
			case "/b", "/c", "/r":
				a.op = sw
				if sw == "/b" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "/") {
					a.verb = strings.ToLower(args[i+1])
					i++
				}
				continue
			case "/l", "/l0", "/?", "/h", "/help":
				a.op = sw
				continue
			}
			return nil, usagef("ambackup: start with the operation: /b (backup), /c (clone), /r (restore), /l (list) or /? (help), not %s", args[i])
		}
		if _, dup := a.opts[sw]; dup || a.flags[sw] {
			return nil, usagef("ambackup: %s given twice", sw)
		}
		// /a is a comment in a backup, SSD alignment (no value) in a
		// clone or restore. A value is always the next argument, even one
		// that starts with "/" (a Unix path).
		if takesValue[sw] && (sw != "/a" || a.op == "/b") {
			if i+1 >= len(args) {
				return nil, usagef("ambackup: %s needs a value", sw)
			}
			a.opts[sw] = args[i+1]
			i++
			continue
		}
		a.flags[sw] = true
	}
	return a, nil
}

// amSource turns a seed-style source or target into a device path.
func amSource(s string, disks func() ([]string, error)) (string, error) {
	if s == "" {
		return "", usagef("ambackup: no source or target: give /s and /d")
	}
	if runtime.GOOS == "windows" && len(s) == 2 && s[1] == ':' {
		return `\\.\` + strings.ToUpper(s), nil
	}
	d, p, isPart := strings.Cut(s, ":")
	if n, err := strconv.Atoi(d); err == nil {
		ds, err := disks()
		if err != nil {
			return "", err
		}
		if n < 0 || n >= len(ds) {
			return "", usagef("ambackup: there is no disk %d: lifeboat ambackup /l0 lists %d disks, numbered from 0", n, len(ds))
		}
		if !isPart {
			return ds[n], nil
		}
		pn, err := strconv.Atoi(p)
		if err != nil || pn < 1 {
			return "", usagef("ambackup: %q: write DISK:PARTITION, e.g. 0:1 (partitions are numbered from 1)", s)
		}
		return partitionPath(ds[n], pn), nil
	}
	return s, nil
}

// partitionPath is partition n of a disk device (sda → sda2, nvme0n1 →
// nvme0n1p2).
func partitionPath(disk string, n int) string {
	if runtime.GOOS == "windows" {
		return fmt.Sprintf(`%s\Partition%d`, disk, n)
	}
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}

// translateAMBackup returns the lifeboat command lines the seed's command
// means (nil for help), and notes on what it does not honour.
func translateAMBackup(args []string, disks func() ([]string, error)) ([][]string, []string, error) {
	a, err := parseAMBackup(args)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	allow := func(known ...string) error {
		for k := range a.opts {
			if !slices.Contains(known, k) {
				return usagef("ambackup %s: %s is not an option lifeboat can honour here (/? lists what it takes)", a.op, k)
			}
		}
		for k := range a.flags {
			if !slices.Contains(known, k) {
				return usagef("ambackup %s: %s is not an option lifeboat can honour here (/? lists what it takes)", a.op, k)
			}
		}
		return nil
	}
	kind := func() (string, error) {
		switch t := strings.ToLower(a.opts["/t"]); t {
		case "disk", "part", "system":
			return t, nil
		case "file":
			return "", usagef("ambackup /t file: file backups are not a lifeboat concept yet; back up the partition (/t part)")
		case "":
			return "", usagef("ambackup %s: give the type: /t disk, /t part or /t system", a.op)
		default:
			return "", usagef("ambackup /t %s: use disk, part or system", t)
		}
	}
	if r, ok := a.opts["/r"]; ok && a.op == "/b" {
		notes = append(notes, fmt.Sprintf("/r %s is not honoured: lifeboat has no such backup setting", r))
		delete(a.opts, "/r")
	}
	for _, f := range []string{"/k", "/h", "/v", "/i"} {
		if a.flags[f] {
			notes = append(notes, f+" is not honoured: no such setting in lifeboat")
			delete(a.flags, f)
		}
	}
	switch a.op {
	case "/?", "/h", "/help":
		return nil, notes, nil
	case "/l":
		return [][]string{{"task", "list"}}, notes, allow()
	case "/l0":
		return [][]string{{"disks"}}, notes, allow()
	case "/b":
		switch a.verb {
		case "", "new":
			if err := allow("/t", "/s", "/d", "/n", "/a", "/c", "/e", "/m"); err != nil {
				return nil, nil, err
			}
			t, err := kind()
			if err != nil {
				return nil, nil, err
			}
			source := "system"
			if t != "system" {
				dev, err := amSource(a.opts["/s"], disks)
				if err != nil {
					return nil, nil, err
				}
				source = t + ":" + dev
			} else if a.opts["/s"] != "" {
				notes = append(notes, "/s is not used with /t system: the system's disk is found when the task runs")
			}
			if a.opts["/d"] == "" {
				return nil, nil, usagef("ambackup /b new: give the destination folder with /d")
			}
			name := a.opts["/n"]
			if name == "" {
				name = strings.Title(t) + " Backup" //nolint:staticcheck // one ASCII word
			}
			add := []string{"task", "add", name, "--source", source, "--dest", a.opts["/d"], "--scheme", "incremental"}
			if v, ok := a.opts["/a"]; ok {
				add = append(add, "--description", v)
			}
			if v, ok := a.opts["/c"]; ok {
				lvl := map[string]string{"0": "none", "1": "normal", "2": "high"}[v]
				if lvl == "" {
					return nil, nil, usagef("ambackup /c %s: use 0 (none), 1 (normal) or 2 (high)", v)
				}
				add = append(add, "--compression", lvl)
			}
			if a.flags["/e"] {
				add = append(add, "--sector-by-sector")
			}
			if v, ok := a.opts["/m"]; ok {
				mb, err := strconv.Atoi(v)
				if err != nil || mb < 50 {
					return nil, nil, usagef("ambackup /m %s: give the part size in MB, at least 50", v)
				}
				add = append(add, "--split", v+"M")
			}
			return [][]string{add, {"task", "run", name, "--kind", "full"}}, notes, nil
		case "full", "inc", "dif":
			if err := allow("/n", "/s"); err != nil {
				return nil, nil, err
			}
			name := a.opts["/n"]
			if name == "" {
				var err error
				if name, err = taskOf(a.opts["/s"]); err != nil {
					return nil, nil, err
				}
			}
			k := map[string]string{"full": "full", "inc": "incremental", "dif": "differential"}[a.verb]
			return [][]string{{"task", "run", name, "--kind", k}}, notes, nil
		default:
			return nil, nil, usagef("ambackup /b %s: use /b new, /b full, /b inc or /b dif", a.verb)
		}
	case "/c", "/r":
		if err := allow("/t", "/s", "/d", "/a"); err != nil {
			return nil, nil, err
		}
		t, err := kind()
		if err != nil {
			return nil, nil, err
		}
		if t == "system" && a.op == "/r" {
			t = "disk"
		}
		if a.flags["/a"] {
			notes = append(notes, "/a: lifeboat aligns partitions to 1 MiB always (SSD alignment)")
		}
		delete(a.opts, "/a")
		dst, err := amSource(a.opts["/d"], disks)
		if err != nil {
			return nil, nil, err
		}
		if a.op == "/r" {
			if a.opts["/s"] == "" {
				return nil, nil, usagef("ambackup /r: give the image with /s")
			}
			return [][]string{{"restore", a.opts["/s"], "--target", dst}}, notes, nil
		}
		src, err := amSource(a.opts["/s"], disks)
		if err != nil {
			return nil, nil, err
		}
		return [][]string{{"clone", t, src, "--target", dst}}, notes, nil
	}
	return nil, nil, usagef("ambackup: unknown operation %s", a.op)
}

// taskOf names the task /s means: a task's name, or an image one wrote.
func taskOf(s string) (string, error) {
	if s == "" {
		return "", usagef("ambackup /b: name the task with /n NAME (or /s with the task's name or an image it wrote)")
	}
	p := tasks.DefaultPaths()
	cfg, err := tasks.Load(p.Config)
	if err != nil {
		return "", err
	}
	if _, err := cfg.Find(s); err == nil {
		return s, nil
	}
	abs, _ := filepath.Abs(s)
	for _, t := range cfg.Tasks {
		ims, _ := tasks.Images(p.State, t.Name)
		for _, im := range ims {
			if im.File == abs {
				return t.Name, nil
			}
		}
	}
	return "", usagef("ambackup: %q is neither a task nor an image a task wrote (lifeboat ambackup /l lists the tasks)", s)
}
