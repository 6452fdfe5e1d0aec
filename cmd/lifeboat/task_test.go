//go:build linux

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// TestTaskCommands drives the task commands as a user would, with a
// configuration and state of the test's own (never /etc/lifeboat): add,
// list, show, edit, run, log, export, import, remove, and every refusal
// with its exit code and a message naming the task and the field.
func TestTaskCommands(t *testing.T) {
	dir := t.TempDir()
	env := []string{"LIFEBOAT_CONFIG=" + filepath.Join(dir, "etc", "tasks.yaml"), "LIFEBOAT_STATE=" + filepath.Join(dir, "state")}
	src := filepath.Join(dir, "part.img")
	os.WriteFile(src, nil, 0o600)
	os.Truncate(src, 32<<20)
	fstest.Run(t, "mkfs.ext4", "-q", "-F", "-b", "2048", src)
	dest := filepath.Join(dir, "dest")
	os.Mkdir(dest, 0o755)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("a password\n"), 0o600)

	r := mustLB(t, env, "task", "add", "pc1", "--source", "part:"+src, "--dest", dest, "--schedule", "daily 02:00",
		"--scheme", "incremental full-every=3 keep-groups=1", "--encrypt", "--password-file", pw, "--notify-on", "always")
	if !strings.Contains(r.stdout, "next run") || !strings.Contains(r.stdout, "lifeboat task install") {
		t.Errorf("add: %s", r.stdout)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc", "tasks.yaml")); strings.Contains(string(b), "a password") || !strings.Contains(string(b), "password-file: "+pw) {
		t.Errorf("the configuration:\n%s", b)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"task", "add", "pc1", "--source", "system", "--dest", dest}, 5, `task "pc1" exists already`},
		{[]string{"task", "add", "pc2", "--source", "system", "--dest", dest, "--schedule", "dayly 02:00"}, 1, `schedule: "dayly 02:00": unknown kind "dayly"`},
		{[]string{"task", "add", "pc2", "--source", "/dev/sda", "--dest", dest}, 1, `source: "/dev/sda": use disk:DEVICE`},
		{[]string{"task", "add", "pc2", "--source", "system", "--dest", dest, "--encrypt"}, 1, "encrypt: a scheduled backup cannot ask for a password"},
		{[]string{"task", "run", "nope"}, 6, `no task "nope": the tasks in ` + filepath.Join(dir, "etc", "tasks.yaml") + ` are: pc1`},
		{[]string{"task", "show", "nope"}, 6, `no task "nope"`},
		{[]string{"task", "edit", "pc1", "--scheme", "full keep-groups=2"}, 2, "a full scheme keeps full backups: use keep=N"},
		{[]string{"task", "edit", "pc1"}, 2, "nothing to change"},
		{[]string{"task", "run", "pc1", "--kind", "partial"}, 2, "--kind partial"},
	} {
		r := lb(t, env, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("lifeboat %v: exit %d, %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	for i := range 4 {
		r := mustLB(t, env, "task", "run", "pc1", "-q")
		if i == 3 && !strings.Contains(r.stdout, "Deleted by the scheme") {
			t.Errorf("the fourth run deleted nothing:\n%s", r.stdout)
		}
	}
	r = mustLB(t, env, "task", "show", "pc1")
	if !strings.Contains(r.stdout, "The next run writes: an incremental backup") || strings.Count(r.stdout, ".lbi") != 1 {
		t.Errorf("show:\n%s", r.stdout)
	}
	r = mustLB(t, env, "log", "pc1", "--json")
	var recs []struct{ Result, Kind string }
	if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 4 || recs[0].Kind != "full" || recs[3].Kind != "full" {
		t.Errorf("log: %v %+v", err, recs)
	}
	if r := mustLB(t, env, "log"); !strings.Contains(r.stdout, "nope") || !strings.Contains(r.stdout, "(deleted 3)") {
		t.Errorf("log:\n%s", r.stdout)
	}
	mustLB(t, env, "task", "edit", "pc1", "--schedule", "weekly sat 03:00", "--schedule", "usb")
	r = mustLB(t, env, "task", "list")
	if !strings.Contains(r.stdout, "weekly sat 03:00; usb") || !strings.Contains(r.stdout, "success") {
		t.Errorf("list:\n%s", r.stdout)
	}
	exp := filepath.Join(dir, "exported.yaml")
	mustLB(t, env, "task", "export", "-o", exp)
	env2 := []string{"LIFEBOAT_CONFIG=" + filepath.Join(dir, "etc2", "tasks.yaml"), "LIFEBOAT_STATE=" + filepath.Join(dir, "state2")}
	mustLB(t, env2, "task", "import", exp)
	if r := lb(t, env2, "task", "import", exp); r.code != 5 || !strings.Contains(r.stderr, "nothing was imported") {
		t.Errorf("import twice: %d %s", r.code, r.stderr)
	}
	mustLB(t, env2, "task", "import", exp, "--replace")
	a, _ := os.ReadFile(filepath.Join(dir, "etc", "tasks.yaml"))
	b, _ := os.ReadFile(filepath.Join(dir, "etc2", "tasks.yaml"))
	if string(a) != string(b) {
		t.Errorf("export/import changed the tasks:\n%s\n---\n%s", a, b)
	}
	mustLB(t, env, "task", "remove", "pc1")
	if r := mustLB(t, env, "task", "list"); !strings.Contains(r.stdout, "No tasks") {
		t.Errorf("after remove: %s", r.stdout)
	}
	if ents, _ := os.ReadDir(dest); len(ents) == 0 {
		t.Error("remove deleted the task's images")
	}
	// A configuration edited into nonsense: every command says where.
	os.WriteFile(filepath.Join(dir, "etc", "tasks.yaml"), []byte("tasks:\n  - name: pc1\n    sorce: system\n"), 0o600)
	if r := lb(t, env, "task", "list"); r.code == 0 || !strings.Contains(r.stderr, `tasks.yaml:3: unknown field "sorce"`) {
		t.Errorf("nonsense: %d %s", r.code, r.stderr)
	}
}

// TestAMBackup runs the seed product's syntax: a new disk-image task from
// /b new, an incremental from /b inc, the list from /l, and the options it
// cannot honour named.
func TestAMBackup(t *testing.T) {
	dir := t.TempDir()
	env := []string{"LIFEBOAT_CONFIG=" + filepath.Join(dir, "tasks.yaml"), "LIFEBOAT_STATE=" + filepath.Join(dir, "state")}
	src := filepath.Join(dir, "part.img")
	os.WriteFile(src, nil, 0o600)
	os.Truncate(src, 32<<20)
	fstest.Run(t, "mkfs.ext4", "-q", "-F", src)
	dest := filepath.Join(dir, "D")
	os.Mkdir(dest, 0o755)
	r := mustLB(t, env, "ambackup", "/b", "new", "/t", "part", "/s", src, "/d", dest, "/n", "Backup Part 1", "/c", "2", "/m", "100", "/r", "1", "/a", "nightly")
	if !strings.Contains(r.stderr, "/r 1 is not honoured") || !strings.Contains(r.stderr, `→ lifeboat task add "Backup Part 1" --source part:`+src) ||
		!strings.Contains(r.stderr, "--compression high --split 100M") || !strings.Contains(r.stderr, `→ lifeboat task run "Backup Part 1" --kind full`) {
		t.Errorf("/b new:\n%s", r.stderr)
	}
	r = mustLB(t, env, "ambackup", "/b", "inc", "/n", "Backup Part 1")
	if !strings.Contains(r.stdout, "incremental backup") {
		t.Errorf("/b inc:\n%s", r.stdout)
	}
	if r := mustLB(t, env, "ambackup", "/l"); !strings.Contains(r.stdout, "Backup Part 1") {
		t.Errorf("/l:\n%s", r.stdout)
	}
	if r := mustLB(t, env, "ambackup", "/?"); !strings.Contains(r.stdout, "/b new /t system|disk|part") {
		t.Errorf("/?:\n%s", r.stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ambackup", "/x"}, "start with the operation"},
		{[]string{"ambackup", "/b", "new", "/t", "file", "/s", "C:", "/d", dest}, "file backups are not a lifeboat concept yet"},
		{[]string{"ambackup", "/b", "new", "/t", "part", "/s", src, "/d", dest, "/z"}, "/z is not an option lifeboat can honour here"},
		{[]string{"ambackup", "/b", "new", "/t", "disk", "/s", "99", "/d", dest}, "there is no disk 99"},
		{[]string{"ambackup", "/b", "new", "/t", "part", "/s", src, "/d", dest, "/c", "5"}, "/c 5: use 0 (none), 1 (normal) or 2 (high)"},
		{[]string{"ambackup", "/b", "inc", "/s", "nothing-known"}, "is neither a task nor an image a task wrote"},
		{[]string{"ambackup", "/r", "/t", "disk", "/d", "0"}, "give the image with /s"},
	} {
		if r := lb(t, env, tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("lifeboat %v: exit %d %q, want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
