// Package tasks turns named backup tasks — a source, a destination,
// schedules, a scheme of full, incremental and differential points with
// retention, pre/post commands and notifications — into engine calls and
// into the platform's scheduler units (systemd on Linux, Task Scheduler on
// Windows). The engine stays unaware of schedules; the scheduler only ever
// runs "lifeboat task run NAME", which does exactly what "task run" by hand
// does.
//
// A task's configuration lives in one human-editable YAML file; what the
// runs produced (the images each task wrote, its log) lives in a state
// folder beside it. Secrets are never in the file: an image password or an
// SMTP password is named by a file that holds it.
package tasks

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// Task is one named backup task as the configuration file holds it.
type Task struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Source is disk:DEVICE, part:DEVICE or system (the disk the running
	// system starts from).
	Source string `yaml:"source"`
	// Dest is the folder the task's images go into.
	Dest     string   `yaml:"dest"`
	Schedule []string `yaml:"schedule,omitempty"`
	// Missed is run (default: a run the machine was off for happens at
	// the next start) or skip.
	Missed string `yaml:"missed,omitempty"`
	// Scheme is e.g. "incremental full-every=7 keep-groups=4"; see
	// ParseScheme. Empty: "incremental full-every=7", keeping everything.
	Scheme         string `yaml:"scheme,omitempty"`
	Compression    string `yaml:"compression,omitempty"`
	Encrypt        bool   `yaml:"encrypt,omitempty"`
	PasswordFile   string `yaml:"password-file,omitempty"`
	Split          string `yaml:"split,omitempty"`
	SectorBySector bool   `yaml:"sector-by-sector,omitempty"`
	// CheckAfter reads back every byte of each new image (lifeboat check)
	// before the run counts as a success.
	CheckAfter   bool     `yaml:"check-after,omitempty"`
	Pre          string   `yaml:"pre,omitempty"`
	Post         string   `yaml:"post,omitempty"`
	PreTimeout   string   `yaml:"pre-timeout,omitempty"`
	PostTimeout  string   `yaml:"post-timeout,omitempty"`
	OnPreFailure string   `yaml:"on-pre-failure,omitempty"` // skip (default) or continue
	Notify       []string `yaml:"notify,omitempty"`
	NotifyOn     string   `yaml:"notify-on,omitempty"` // failure (default), success or always
}

// Config is the whole configuration file.
type Config struct {
	Tasks []Task `yaml:"tasks"`
	// path is where it was loaded from or is saved to; lines are the line
	// of each task's fields there (task index → field → line).
	path  string
	lines []map[string]int
}

// Path is the file the configuration was read from.
func (c *Config) Path() string { return c.path }

// Find returns the task called name.
func (c *Config) Find(name string) (*Task, error) {
	for i := range c.Tasks {
		if c.Tasks[i].Name == name {
			return &c.Tasks[i], nil
		}
	}
	return nil, c.unknown(name)
}

func (c *Config) unknown(name string) error {
	var names []string
	for _, t := range c.Tasks {
		names = append(names, t.Name)
	}
	if len(names) == 0 {
		return &kindError{fmt.Sprintf("no task %q: %s holds no tasks; add one with lifeboat task add", name, c.path), fs.ErrNotExist}
	}
	return &kindError{fmt.Sprintf("no task %q: the tasks in %s are: %s (lifeboat task list)", name, c.path, strings.Join(names, ", ")), fs.ErrNotExist}
}

// kindError is a message of its own that still maps to its kind's exit
// code (fs.ErrNotExist, engine.ErrRefused, …).
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Paths are where tasks keep their configuration and state.
type Paths struct {
	Config string // the YAML file
	State  string // folder: each task's catalogue of images, locks, installed units
	Log    string // the run log, one JSON object per line
}

// DefaultPaths are the platform's usual places: /etc/lifeboat/tasks.yaml,
// /var/lib/lifeboat/tasks and /var/log/lifeboat/tasks.jsonl on Linux,
// %ProgramData%\Lifeboat\ on Windows. LIFEBOAT_CONFIG names another
// configuration file and LIFEBOAT_STATE another state folder (the log then
// goes into it).
func DefaultPaths() Paths {
	p := DefaultPathsFor(runtime.GOOS)
	if v := os.Getenv("LIFEBOAT_CONFIG"); v != "" {
		p.Config = v
	}
	if v := os.Getenv("LIFEBOAT_STATE"); v != "" {
		p.State, p.Log = v, filepath.Join(v, "tasks.jsonl")
	}
	return p
}

// ConfigError is a configuration file that does not make sense: every
// problem found, each with its line.
type ConfigError struct {
	File     string
	Problems []string // "LINE: task "pc1": schedule: …"
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("%s:%s; fix the file (or lifeboat task edit)", e.File, e.Problems[0])
	}
	return fmt.Sprintf("%s has %d problems; fix the file (or lifeboat task edit):\n  %s:%s", e.File, len(e.Problems), e.File, strings.Join(e.Problems, "\n  "+e.File+":"))
}

// Load reads and validates the configuration file. A file that does not
// exist is an empty configuration.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Config{path: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the task configuration: %w", err)
	}
	return Parse(path, b)
}

var fieldNames = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeOf(Task{})
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		m[name] = i
	}
	return m
}()

// Parse decodes and validates a configuration held in b (path names it in
// messages).
func Parse(path string, b []byte) (*Config, error) {
	c := &Config{path: path}
	ce := &ConfigError{File: path}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		// yaml's messages start "yaml: line N: …".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if l, rest, ok := strings.Cut(strings.TrimPrefix(msg, "line "), ": "); ok && strings.HasPrefix(msg, "line ") {
			msg = l + ": " + rest
		} else {
			msg = "1: " + msg
		}
		ce.Problems = append(ce.Problems, msg+" (not valid YAML)")
		return nil, ce
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return c, nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		ce.Problems = append(ce.Problems, fmt.Sprintf("%d: the file should be a mapping with one key, tasks: a list of tasks", doc.Line))
		return nil, ce
	}
	var list *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if k.Value != "tasks" {
			ce.Problems = append(ce.Problems, fmt.Sprintf("%d: unknown key %q: the file holds one key, tasks", k.Line, k.Value))
			continue
		}
		list = v
	}
	if list != nil && list.Kind != yaml.SequenceNode && !(list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		ce.Problems = append(ce.Problems, fmt.Sprintf("%d: tasks should be a list (each item starting with \"- name: …\")", list.Line))
	}
	if list != nil && list.Kind == yaml.SequenceNode {
		for _, tn := range list.Content {
			t, lines, probs := decodeTask(tn)
			ce.Problems = append(ce.Problems, probs...)
			c.Tasks = append(c.Tasks, t)
			c.lines = append(c.lines, lines)
		}
	}
	if len(ce.Problems) == 0 {
		ce.Problems = c.validate()
	}
	if len(ce.Problems) > 0 {
		return nil, ce
	}
	return c, nil
}

func decodeTask(n *yaml.Node) (Task, map[string]int, []string) {
	var t Task
	lines := map[string]int{"": n.Line}
	if n.Kind != yaml.MappingNode {
		return t, lines, []string{fmt.Sprintf("%d: a task should be a mapping of fields (name: …, source: …, dest: …)", n.Line)}
	}
	var probs []string
	v := reflect.ValueOf(&t).Elem()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		lines[k.Value] = k.Line
		fi, ok := fieldNames[k.Value]
		if !ok {
			switch {
			case strings.Contains(strings.ToLower(k.Value), "password"):
				probs = append(probs, fmt.Sprintf("%d: %s: a password is never written in this file; put it in a file only root can read and name that file with password-file", k.Line, k.Value))
			default:
				probs = append(probs, fmt.Sprintf("%d: unknown field %q (the fields are %s)", k.Line, k.Value, strings.Join(sortedFields(), ", ")))
			}
			continue
		}
		f := v.Field(fi)
		if f.Kind() == reflect.Slice && val.Kind == yaml.ScalarNode && val.Tag != "!!null" {
			// A single schedule or notify target may be written without a
			// list.
			f.Set(reflect.ValueOf([]string{val.Value}))
			continue
		}
		if err := val.Decode(f.Addr().Interface()); err != nil {
			probs = append(probs, fmt.Sprintf("%d: %s: %s", k.Line, k.Value, strings.TrimPrefix(err.Error(), "yaml: ")))
		}
	}
	return t, lines, probs
}

func sortedFields() []string {
	var s []string
	for k := range fieldNames {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)

// validate checks every task; problems carry lines when the configuration
// came from a file.
func (c *Config) validate() []string {
	var probs []string
	seen := map[string]int{}
	for i := range c.Tasks {
		t := &c.Tasks[i]
		line := func(field string) int {
			if i < len(c.lines) {
				if l, ok := c.lines[i][field]; ok {
					return l
				}
				return c.lines[i][""]
			}
			return 0
		}
		for _, p := range t.Problems() {
			probs = append(probs, fmt.Sprintf("%d: task %q: %s: %s", line(p.Field), t.Name, p.Field, p.Msg))
		}
		if j, dup := seen[fileName(t.Name)]; dup && t.Name != "" {
			if c.Tasks[j].Name == t.Name {
				probs = append(probs, fmt.Sprintf("%d: task %q: name: a second task of that name (the first is task %d); names must be unique", line("name"), t.Name, j+1))
			} else {
				probs = append(probs, fmt.Sprintf("%d: task %q: name: too like task %q (their files and units would share a name: spaces count as '_')", line("name"), t.Name, c.Tasks[j].Name))
			}
		}
		seen[fileName(t.Name)] = i
	}
	return probs
}

// Problem is one field of a task that is wrong.
type Problem struct{ Field, Msg string }

// Problems lists what is wrong with the task, field by field.
func (t *Task) Problems() []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) { ps = append(ps, Problem{field, fmt.Sprintf(format, args...)}) }
	if !nameRE.MatchString(t.Name) {
		add("name", "%q: use up to 64 letters, digits, spaces, '.', '_' and '-', starting with a letter or digit", t.Name)
	}
	if _, _, err := ParseSource(t.Source); err != nil {
		add("source", "%v", err)
	}
	if t.Dest == "" {
		add("dest", "missing: name the folder the images go into")
	} else if engine.IsURL(t.Dest) && !engine.IsS3(t.Dest) && !engine.IsSMB(t.Dest) {
		add("dest", "%q: a task writes into a folder, smb://SERVER/SHARE/FOLDER or s3://BUCKET/PREFIX/", t.Dest)
	} else if !engine.IsURL(t.Dest) && !filepath.IsAbs(t.Dest) {
		add("dest", "%q is not an absolute path; the scheduler runs tasks from another folder", t.Dest)
	}
	for _, s := range t.Schedule {
		if _, err := ParseTrigger(s); err != nil {
			add("schedule", "%v", err)
		}
	}
	if t.Missed != "" && t.Missed != "run" && t.Missed != "skip" {
		add("missed", "%q: use run (a run missed while the machine was off happens when it starts) or skip", t.Missed)
	}
	if _, err := ParseScheme(t.Scheme); err != nil {
		add("scheme", "%v", err)
	}
	if t.Compression != "" {
		if _, err := images.ParseLevel(t.Compression); err != nil {
			add("compression", "%v", err)
		}
	}
	if t.PasswordFile != "" && !t.Encrypt {
		add("password-file", "given but encrypt is not true; add encrypt: true to encrypt the images")
	}
	if t.Encrypt && t.PasswordFile == "" {
		add("encrypt", "a scheduled backup cannot ask for a password: name a file holding it with password-file")
	}
	if t.PasswordFile != "" && !filepath.IsAbs(t.PasswordFile) {
		add("password-file", "%q is not an absolute path", t.PasswordFile)
	}
	if t.Split != "" {
		if n, err := engine.ParseSize(t.Split); err != nil {
			add("split", "%v", err)
		} else if n < images.MinSplitSize {
			add("split", "%s is too small: parts must be at least 50M", t.Split)
		}
	}
	for _, f := range []struct{ name, v string }{{"pre-timeout", t.PreTimeout}, {"post-timeout", t.PostTimeout}} {
		if f.v == "" {
			continue
		}
		if d, err := time.ParseDuration(f.v); err != nil || d <= 0 {
			add(f.name, "%q: give a duration such as 90s, 10m or 2h", f.v)
		}
	}
	if (t.PreTimeout != "" && t.Pre == "") || (t.PostTimeout != "" && t.Post == "") {
		if t.PreTimeout != "" && t.Pre == "" {
			add("pre-timeout", "given without a pre command")
		} else {
			add("post-timeout", "given without a post command")
		}
	}
	switch t.OnPreFailure {
	case "", "skip", "continue":
	default:
		add("on-pre-failure", "%q: use skip (no backup when the pre command fails) or continue", t.OnPreFailure)
	}
	for _, n := range t.Notify {
		if _, err := ParseNotify(n); err != nil {
			add("notify", "%v", err)
		}
	}
	switch t.NotifyOn {
	case "", "failure", "success", "always":
	default:
		add("notify-on", "%q: use failure, success or always", t.NotifyOn)
	}
	return ps
}

// Validate checks the task alone, as task add and edit do before saving.
func (t *Task) Validate() error {
	ps := t.Problems()
	if len(ps) == 0 {
		return nil
	}
	var msgs []string
	for _, p := range ps {
		msgs = append(msgs, p.Field+": "+p.Msg)
	}
	return fmt.Errorf("task %q: %s", t.Name, strings.Join(msgs, "; "))
}

// ParseSource splits a task's source into the backup kind (disk or part)
// and the device; "system" is the disk the running system starts from,
// found when the task runs.
func ParseSource(s string) (kind, device string, err error) {
	if s == "system" {
		return "system", "", nil
	}
	kind, device, ok := strings.Cut(s, ":")
	if (kind != "disk" && kind != "part") || !ok || device == "" {
		if s == "" {
			return "", "", errors.New("missing: use disk:DEVICE, part:DEVICE or system (lifeboat disks lists the devices)")
		}
		return "", "", fmt.Errorf("%q: use disk:DEVICE, part:DEVICE or system (lifeboat disks lists the devices)", s)
	}
	return kind, device, nil
}

const header = `# Lifeboat backup tasks. "lifeboat task add|edit|remove" rewrite this file;
# you may edit it by hand ("lifeboat task list" checks it). Passwords are
# never written here: password-file names a file that holds one.
# After changing schedules, run "lifeboat task install" again.
`

// Marshal renders the configuration as the file holds it.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(struct {
		Tasks []Task `yaml:"tasks"`
	}{c.Tasks}); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// Save validates the configuration and writes it atomically (temporary
// file, fsync, rename), mode 0600: it names password files.
func (c *Config) Save() error {
	c.lines = nil
	if probs := c.validate(); len(probs) > 0 {
		return &ConfigError{File: c.path, Problems: probs}
	}
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	return writeAtomic(c.path, b, 0o600)
}

// Add appends t, refusing a name already used.
func (c *Config) Add(t Task) error {
	if slices.ContainsFunc(c.Tasks, func(o Task) bool { return o.Name == t.Name }) {
		return &kindError{fmt.Sprintf("task %q exists already; choose another name, or change it with lifeboat task edit %s", t.Name, quoteName(t.Name)), engine.ErrRefused}
	}
	if err := t.Validate(); err != nil {
		return err
	}
	c.Tasks = append(c.Tasks, t)
	return nil
}

// Remove deletes the task called name from the configuration.
func (c *Config) Remove(name string) error {
	for i := range c.Tasks {
		if c.Tasks[i].Name == name {
			c.Tasks = slices.Delete(c.Tasks, i, i+1)
			return nil
		}
	}
	return c.unknown(name)
}

// fileName is the task's name in file and unit names: spaces become '_'.
func fileName(task string) string { return strings.ReplaceAll(task, " ", "_") }

// quoteName quotes a task name for a shell command line when it needs it.
func quoteName(n string) string {
	if strings.ContainsAny(n, " ") {
		return `"` + n + `"`
	}
	return n
}

// writeAtomic writes b to path through a temporary file in its folder.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
