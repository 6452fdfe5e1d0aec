package tasks

import (
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// TestSystemdUnitsVerify has systemd check every unit a task can get:
// systemd-analyze verify must pass and say nothing (an unknown key is only
// a warning to it, so any output fails the test).
func TestSystemdUnitsVerify(t *testing.T) {
	exe := lifeboatForTest(t)
	dir := t.TempDir()
	for _, name := range []string{"pc1", "Backup Disk 0"} {
		task := &Task{Name: name, Source: "system", Dest: "/srv/backups/pc 1", Schedule: everyTrigger}
		units := SystemdUnits(task, exe, []string{"LIFEBOAT_CONFIG=/etc/x y/tasks.yaml", "LIFEBOAT_STATE=/var/lib/x"})
		var files []string
		var kinds []string
		for _, u := range units {
			p := filepath.Join(dir, u.Name)
			if err := os.WriteFile(p, u.Content, 0o644); err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, filepath.Ext(u.Name))
			if u.Dir == "systemd" {
				files = append(files, p)
			}
		}
		for _, want := range []string{".service", ".timer", ".rules"} {
			if !slices.Contains(kinds, want) {
				t.Fatalf("%s: no %s unit in %v", name, want, kinds)
			}
		}
		cmd := exec.Command("systemd-analyze", append([]string{"verify"}, files...)...)
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify %s: %v\n%s", strings.Join(files, " "), err, out)
		}
		timer := string(units[1].Content)
		for _, want := range []string{"OnCalendar=*-*-* 02:00:00", "OnCalendar=*-*-* 14:30:00", "OnCalendar=*-*-* 08,11,14,17:00:00", "OnCalendar=*-*-* 09,12,15:30:00", "OnCalendar=Mon,Fri *-*-* 12:00:00", "OnCalendar=*-*~01 03:15:00", "OnBootSec=2min", "Persistent=true", "OnCalendar=2027-01-02 03:04:00"} {
			if !strings.Contains(timer, want) {
				t.Errorf("timer lacks %q:\n%s", want, timer)
			}
		}
		rules := string(units[len(units)-1].Content)
		if !strings.Contains(rules, `ENV{ID_FS_LABEL}=="BACKUPS"`) || !strings.Contains(rules, `ENV{SYSTEMD_WANTS}+="lifeboat-task-`+fileName(name)+`-usb.service"`) {
			t.Errorf("udev rule:\n%s", rules)
		}
	}
}

// TestServiceCommandLine runs the service unit's command line exactly as
// written in it (ExecStart, Environment) and finds the run in the log: the
// scheduler runs what "task run" runs.
func TestServiceCommandLine(t *testing.T) {
	te := newTaskEnv(t, Task{})
	exe := lifeboatForTest(t)
	task := Task{Name: "svc test", Source: "part:" + te.fs.img, Dest: te.dest, Schedule: []string{"daily 02:00"}}
	te.save(task)
	in := &Installer{Paths: te.paths, Exe: exe}
	units := SystemdUnits(&task, exe, in.env())
	var env, argv []string
	for _, l := range strings.Split(string(units[0].Content), "\n") {
		if v, ok := strings.CutPrefix(l, "Environment="); ok {
			env = append(env, unquoteSystemd(t, v)...)
		}
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			argv = unquoteSystemd(t, v)
		}
	}
	if len(env) != 2 || len(argv) < 5 {
		t.Fatalf("unit:\n%s", units[0].Content)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	l := te.lastLog()
	if l.Task != "svc test" || l.Trigger != "scheduled" || l.Result != "success" || l.Image == "" {
		t.Fatalf("log: %+v", l)
	}
}

// unquoteSystemd splits a systemd Exec/Environment value as systemd does
// for the quoting SystemdUnits uses ("…" with \\ \" and %% $$).
func unquoteSystemd(t *testing.T, s string) []string {
	var out []string
	var cur strings.Builder
	in, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			in, have = !in, true
		case c == '\\' && in && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case (c == '%' || c == '$') && i+1 < len(s) && s[i+1] == c:
			i++
			cur.WriteByte(c)
		case c == ' ' && !in:
			if have || cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
			have = false
		default:
			cur.WriteByte(c)
		}
	}
	if have || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// TestInstallIdempotent installs the units under a root folder (systemd
// not running there: systemctl --root enables them), twice, then with a
// task's schedule removed, then uninstalls: each step leaves exactly what
// it should, and uninstall nothing at all.
func TestInstallIdempotent(t *testing.T) {
	exe := lifeboatForTest(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	paths := Paths{Config: filepath.Join(dir, "tasks.yaml"), State: filepath.Join(dir, "state"), Log: filepath.Join(dir, "state", "tasks.jsonl")}
	cfg := &Config{path: paths.Config, Tasks: []Task{
		{Name: "a", Source: "system", Dest: "/b", Schedule: []string{"daily 02:00", "shutdown", "usb"}},
		{Name: "b b", Source: "system", Dest: "/c", Schedule: []string{"logon", "weekly sat 09:00"}},
		{Name: "c", Source: "system", Dest: "/d"},
	}}
	in := &Installer{Paths: paths, Exe: exe, Root: root}
	tree := func() []string {
		var out []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				fi, _ := os.Lstat(p)
				rel, _ := filepath.Rel(root, p)
				out = append(out, rel+" "+fi.ModTime().Format(time.RFC3339Nano))
			}
			return nil
		})
		return out
	}
	if err := in.Install(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	first := tree()
	for _, want := range []string{"etc/systemd/system/lifeboat-task-a.timer", "etc/systemd/system/timers.target.wants/lifeboat-task-a.timer",
		"etc/systemd/system/multi-user.target.wants/lifeboat-task-a-shutdown.service", "etc/udev/rules.d/90-lifeboat-task-a.rules",
		"etc/systemd/system/user@.service.wants/lifeboat-task-b_b-logon.service", "etc/systemd/system/lifeboat-task-b_b.timer"} {
		if !slices.ContainsFunc(first, func(s string) bool { return strings.HasPrefix(s, want+" ") }) {
			t.Errorf("install did not make %s:\n%s", want, strings.Join(first, "\n"))
		}
	}
	if slices.ContainsFunc(first, func(s string) bool { return strings.Contains(s, "task-c") }) {
		t.Errorf("a task without a schedule got units")
	}
	if err := in.Install(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if again := tree(); !slices.Equal(first, again) {
		t.Fatalf("a second install changed things:\n%s\n---\n%s", strings.Join(first, "\n"), strings.Join(again, "\n"))
	}
	cfg.Tasks[0].Schedule = nil
	if err := in.Install(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(tree(), func(s string) bool { return strings.Contains(s, "task-a") }) {
		t.Fatalf("task a's units outlived its schedule:\n%s", strings.Join(tree(), "\n"))
	}
	// Uninstall finds our units even when the state folder (and its
	// list of what was installed) is gone.
	os.RemoveAll(paths.State)
	if err := in.Uninstall(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := tree(); len(left) != 0 {
		t.Fatalf("uninstall left:\n%s", strings.Join(left, "\n"))
	}
}

// TestWindowsTaskXML checks the Task Scheduler definition: UTF-16 with a
// byte-order mark (what schtasks /XML reads; Wine decodes a file without
// one in the ANSI code page), the Task namespace and schema version 1.2,
// each schedule as the trigger Windows has for it, run as SYSTEM with the
// highest privileges, missed runs started when possible. There is no copy
// of Microsoft's XSD here to validate against: the structure is checked
// by decoding it back, and the Windows lane registers it with Wine's
// schtasks (which checks the namespace, the root and the settings).
func TestWindowsTaskXML(t *testing.T) {
	task := &Task{Name: "Backup Disk 0", Source: "disk:0", Dest: `D:\Backups`, Schedule: everyTrigger}
	b := WindowsTask(task, `C:\Program Files\Lifeboat\lifeboat.exe`, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	if b[0] != 0xff || b[1] != 0xfe {
		t.Fatal("no UTF-16 LE byte-order mark")
	}
	u := make([]uint16, (len(b)-2)/2)
	for i := range u {
		u[i] = uint16(b[2+2*i]) | uint16(b[3+2*i])<<8
	}
	text := string(utf16.Decode(u))
	dec := xml.NewDecoder(strings.NewReader(strings.Replace(text, `encoding="UTF-16"`, `encoding="UTF-8"`, 1)))
	var w wTask
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if w.Version != "1.2" || w.XMLName.Space != TaskNamespace || w.Reg.URI != `\Lifeboat\Backup Disk 0` {
		t.Fatalf("task: %+v", w)
	}
	tr := w.Triggers
	if len(tr.Calendar) != 5 || len(tr.Time) != 1 || len(tr.Boot) != 1 || len(tr.Logon) != 1 || len(tr.Event) != 2 {
		t.Fatalf("triggers: %+v", tr)
	}
	if c := tr.Calendar[0]; c.StartBoundary != "2026-12-05T02:00:00" || c.ByDay == nil || c.ByDay.DaysInterval != 1 {
		t.Errorf("daily: %+v", c)
	}
	if c := tr.Calendar[2]; c.ByWeek == nil || len(c.ByWeek.DaysOfWeek.Days) != 2 || c.ByWeek.DaysOfWeek.Days[0].Local != "Monday" || c.ByWeek.DaysOfWeek.Days[1].Local != "Friday" {
		t.Errorf("weekly: %+v", c)
	}
	if c := tr.Calendar[3]; c.ByMonth == nil || !slices.Equal(c.ByMonth.DaysOfMonth, []string{"1", "Last"}) || len(c.ByMonth.Months.Days) != 12 {
		t.Errorf("monthly: %+v", c)
	}
	if c := tr.Calendar[4]; c.Repetition == nil || c.Repetition.Interval != "PT1H30M" || c.Repetition.Duration != "PT10H" || c.StartBoundary != "2026-12-05T08:00:00" {
		t.Errorf("every: %+v %+v", c, c.Repetition)
	}
	if tr.Time[0].StartBoundary != "2027-01-02T03:04:00" {
		t.Errorf("once: %+v", tr.Time[0])
	}
	if !strings.Contains(tr.Event[0].Subscription, "EventID=1074") || !strings.Contains(tr.Event[1].Subscription, "Partition/Diagnostic") {
		t.Errorf("events: %+v", tr.Event)
	}
	if p := w.Principals; len(p) != 1 || p[0].UserID != "S-1-5-18" || p[0].RunLevel != "HighestAvailable" {
		t.Errorf("principal: %+v", p)
	}
	s := w.Settings
	if !s.StartWhenAvailable || s.MultipleInstancesPolicy != "IgnoreNew" || s.DisallowStartIfOnBatteries || s.ExecutionTimeLimit != "PT0S" {
		t.Errorf("settings: %+v", s)
	}
	if e := w.Actions.Exec; len(e) != 1 || e[0].Command != `C:\Program Files\Lifeboat\lifeboat.exe` || e[0].Arguments != `--quiet task run "Backup Disk 0" --scheduled --if-dest-present` {
		t.Errorf("action: %+v", e)
	}
	// Order of the elements as Windows exports them (schtasks /Query
	// /XML): RegistrationInfo, Triggers, Principals, Settings, Actions;
	// in a calendar trigger Repetition, StartBoundary, Enabled, ScheduleBy….
	idx := func(s string) int { return strings.Index(text, s) }
	if !(idx("<RegistrationInfo>") < idx("<Triggers>") && idx("<Triggers>") < idx("<Principals>") && idx("<Principals>") < idx("<Settings>") && idx("<Settings>") < idx("<Actions")) {
		t.Errorf("element order:\n%s", text)
	}
	rep := text[strings.Index(text, "<Repetition>"):]
	if !(strings.Index(rep, "</Repetition>") < strings.Index(rep, "<StartBoundary>") && strings.Index(rep, "<StartBoundary>") < strings.Index(rep, "<Enabled>") && strings.Index(rep, "<Enabled>") < strings.Index(rep, "<ScheduleByDay>")) {
		t.Errorf("calendar trigger order:\n%s", rep[:300])
	}
	// Missed runs skipped: StartWhenAvailable off.
	task.Missed = "skip"
	if b := WindowsTask(task, "x", time.Now()); strings.Contains(string(utf16Text(b)), "<StartWhenAvailable>true") {
		t.Error("missed: skip still starts missed runs")
	}
}

func utf16Text(b []byte) string {
	u := make([]uint16, (len(b)-2)/2)
	for i := range u {
		u[i] = uint16(b[2+2*i]) | uint16(b[3+2*i])<<8
	}
	return string(utf16.Decode(u))
}
