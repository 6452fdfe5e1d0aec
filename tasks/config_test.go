package tasks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodConfig = `tasks:
  - name: pc1
    source: disk:/dev/sda
    dest: /mnt/nas/pc1
    schedule: daily 02:00
    scheme: incremental full-every=7 keep-groups=4
    encrypt: true
    password-file: /etc/lifeboat/pc1.pass
    notify: smtp://backup@mail.example:587?to=admin@example&password-file=/etc/lifeboat/smtp.pass
  - name: Backup Disk 0
    source: system
    dest: /backups
    schedule: [startup, "weekly mon,thu 12:00"]
`

func TestConfigRoundTrip(t *testing.T) {
	c, err := Parse("tasks.yaml", []byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tasks) != 2 || c.Tasks[0].Schedule[0] != "daily 02:00" || len(c.Tasks[1].Schedule) != 2 {
		t.Fatalf("parsed %+v", c.Tasks)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("again.yaml", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b2, _ := again.Marshal()
	if string(b) != string(b2) {
		t.Fatalf("not stable:\n%s\n---\n%s", b, b2)
	}
	// Saved with 0600 (it names password files), atomically.
	dir := t.TempDir()
	c.path = filepath.Join(dir, "sub", "tasks.yaml")
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(c.path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(c.path)); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

// TestConfigNonsense: every way a hand edit can break the file is one
// message naming the file, the line, the task and the field.
func TestConfigNonsense(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"not yaml", "tasks:\n  - name: pc1\n   source: [\n", "tasks.yaml:1: did not find expected '-' indicator (not valid YAML)"},
		{"tabs", "tasks:\n\t- name: x\n", "tasks.yaml:2: "},
		{"not a mapping", "- name: pc1\n", "tasks.yaml:1: the file should be a mapping"},
		{"unknown key", "task:\n  - name: pc1\n", `tasks.yaml:1: unknown key "task"`},
		{"tasks not a list", "tasks: pc1\n", "tasks.yaml:1: tasks should be a list"},
		{"unknown field", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    schedul: daily 02:00\n", `tasks.yaml:5: unknown field "schedul"`},
		{"password in clear", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    password: hunter2\n", "tasks.yaml:5: password: a password is never written in this file"},
		{"password in a URL", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    notify: smtp://u:hunter2@mail?to=a@b\n", `tasks.yaml:5: task "pc1": notify: "smtp://u:xxxxx@mail?to=a@b": a password is never written`},
		{"bad schedule", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    schedule:\n      - daily 02:00\n      - dayly 03:00\n", `tasks.yaml:5: task "pc1": schedule: "dayly 03:00": unknown kind "dayly"`},
		{"duplicate", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n  - name: pc1\n    source: system\n    dest: /c\n", `tasks.yaml:5: task "pc1": name: a second task of that name`},
		{"near duplicate", "tasks:\n  - name: pc 1\n    source: system\n    dest: /b\n  - name: pc_1\n    source: system\n    dest: /c\n", `name: too like task "pc 1"`},
		{"no dest", "tasks:\n  - name: pc1\n    source: system\n", `tasks.yaml:2: task "pc1": dest: missing`},
		{"relative dest", "tasks:\n  - name: pc1\n    source: system\n    dest: backups\n", `tasks.yaml:4: task "pc1": dest: "backups" is not an absolute path`},
		{"bad source", "tasks:\n  - name: pc1\n    source: /dev/sda\n    dest: /b\n", `tasks.yaml:3: task "pc1": source: "/dev/sda": use disk:DEVICE`},
		{"bad scheme", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    scheme: incremental keep=3\n", `tasks.yaml:5: task "pc1": scheme: "incremental keep=3": keep=N counts full backups`},
		{"encrypt without file", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    encrypt: true\n", "a scheduled backup cannot ask for a password"},
		{"wrong type", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    encrypt: maybe\n", `tasks.yaml:5: encrypt: `},
		{"bad timeout", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    pre: true\n    pre-timeout: soon\n", `tasks.yaml:6: task "pc1": pre-timeout: "soon"`},
		{"bad name", "tasks:\n  - name: ../etc\n    source: system\n    dest: /b\n", `name: "../etc": use up to 64 letters`},
		{"bad notify-on", "tasks:\n  - name: pc1\n    source: system\n    dest: /b\n    notify-on: sometimes\n", `notify-on: "sometimes"`},
	} {
		_, err := Parse("tasks.yaml", []byte(tc.yaml))
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: error %v, want a ConfigError", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
	// Several problems: all listed, each with its line.
	_, err := Parse("tasks.yaml", []byte("tasks:\n  - name: pc1\n    source: nope\n    dest: rel\n"))
	if err == nil || !strings.Contains(err.Error(), "2 problems") || !strings.Contains(err.Error(), "tasks.yaml:3:") || !strings.Contains(err.Error(), "tasks.yaml:4:") {
		t.Errorf("two problems: %v", err)
	}
	// Empty and missing files are an empty configuration.
	if c, err := Parse("tasks.yaml", nil); err != nil || len(c.Tasks) != 0 {
		t.Errorf("empty: %v %v", c, err)
	}
	if c, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err != nil || len(c.Tasks) != 0 {
		t.Errorf("missing: %v %v", c, err)
	}
}

func TestParseNotify(t *testing.T) {
	n, err := ParseNotify("smtp://backup@mail.example?to=a@x,b@x&password-file=/p")
	if err != nil || n.Port != 587 || n.TLS != "starttls" || len(n.To) != 2 || n.User != "backup" {
		t.Fatalf("%+v %v", n, err)
	}
	n, err = ParseNotify("smtps://mail.example?to=a@x")
	if err != nil || n.Port != 465 || n.TLS != "tls" {
		t.Fatalf("%+v %v", n, err)
	}
	for in, want := range map[string]string{
		"smtp://mail.example":                            "no recipient",
		"smtp://u@mail.example?to=a@x":                   "needs password-file",
		"smtp://mail.example?to=a@x&password-file=/p":    "password-file without a user",
		"smtp://u@mail?to=a@x&password-file=/p&tls=none": "not sent without TLS",
		"smtp://mail?to=a@x&tls=maybe":                   "tls=maybe",
		"smtp://mail?to=a@x&cc=b@x":                      `unknown setting "cc"`,
		"ftp://host/x":                                   "unknown scheme",
		"mail.example":                                   "give smtp://",
		"smtp://mail:99999?to=a@x":                       "port 99999 is not a port number",
	} {
		if _, err := ParseNotify(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
