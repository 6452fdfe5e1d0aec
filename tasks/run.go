package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// Runner runs tasks: what the scheduler starts and what "task run" does.
type Runner struct {
	Paths Paths
	// Now is the clock that names images and stamps the log; time.Now
	// when nil (tests of schemes give a fake one).
	Now      func() time.Time
	Progress engine.Progress
	Out      io.Writer // messages for a person watching (nil: none)
	Trigger  string    // "manual" or "scheduled", for the log
	Version  string    // the tool version written into images
	Log      *slog.Logger
	// IfDestPresent makes a missing destination a quiet skip (a run
	// started by a USB disk being plugged in: not every disk is the
	// task's).
	IfDestPresent bool
	// Send delivers notifications; Notify when nil.
	Send func(ctx context.Context, target string, rec *Record) error
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) say(format string, args ...any) {
	if r.Out != nil {
		fmt.Fprintf(r.Out, format+"\n", args...)
	}
}

// Record is one run in the log.
type Record struct {
	Task       string    `json:"task"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Trigger    string    `json:"trigger,omitempty"`
	Kind       string    `json:"kind,omitempty"`   // full, incremental, differential
	Result     string    `json:"result"`           // success, failure, skipped
	Error      string    `json:"error,omitempty"`  // why it failed or was skipped
	Image      string    `json:"image,omitempty"`  // the image written
	Source     string    `json:"source,omitempty"` // what was backed up
	SourceSize int64     `json:"source_size,omitempty"`
	Read       int64     `json:"read,omitempty"`   // bytes of the source read
	Stored     int64     `json:"stored,omitempty"` // bytes the new image stores
	Warnings   []string  `json:"warnings,omitempty"`
	Deleted    []string  `json:"deleted,omitempty"` // images retention removed
	Merged     string    `json:"merged,omitempty"`  // the full a merge forward wrote
	Pre        *Hook     `json:"pre,omitempty"`
	Post       *Hook     `json:"post,omitempty"`
	Notified   []string  `json:"notified,omitempty"` // targets told, or "TARGET: error"
}

// Failed reports whether the run did not end in a usable new image.
func (rec *Record) Failed() bool { return rec.Result != "success" }

func (rec *Record) warn(format string, args ...any) {
	rec.Warnings = append(rec.Warnings, fmt.Sprintf(format, args...))
}

// Run runs the task called name once: pre command, the point its scheme
// says is due (or force: full, incremental, differential), a read-back of
// the new image, retention, post command, log record, notifications. The
// record is returned with the error of a failed or skipped run.
func (r *Runner) Run(ctx context.Context, name, force string) (*Record, error) {
	rec := &Record{Task: name, Start: r.now(), Trigger: r.Trigger}
	var t *Task
	err := func() error {
		cfg, err := Load(r.Paths.Config)
		if err != nil {
			return err
		}
		if t, err = cfg.Find(name); err != nil {
			return err
		}
		return nil
	}()
	if err != nil {
		return r.finish(ctx, rec, nil, err)
	}
	lk, err := lockTask(r.Paths.State, name, rec.Start)
	if err != nil {
		rec.Result = "skipped"
		return r.finish(ctx, rec, nil, err)
	}
	defer lk.release()
	err = r.run(ctx, t, force, rec)
	return r.finish(ctx, rec, t, err)
}

// finish stamps the record, notifies, appends it to the log.
func (r *Runner) finish(ctx context.Context, rec *Record, t *Task, err error) (*Record, error) {
	rec.End = r.now()
	if err != nil {
		if rec.Result == "" {
			rec.Result = "failure"
		}
		rec.Error = err.Error()
	} else if rec.Result == "" {
		rec.Result = "success"
	}
	quiet := err == nil && rec.Result == "skipped" // IfDestPresent: not this task's disk
	if t != nil && !quiet && wantNotify(t.NotifyOn, rec) {
		send := r.Send
		if send == nil {
			send = Notify
		}
		for _, n := range t.Notify {
			// A notification must go out even when the run was cancelled.
			nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			e := send(nctx, n, rec)
			cancel()
			if e != nil {
				rec.Notified = append(rec.Notified, redact(n)+": "+e.Error())
				rec.warn("notification to %s failed: %v", redact(n), e)
				r.say("WARNING: notification to %s failed: %v", redact(n), e)
			} else {
				rec.Notified = append(rec.Notified, redact(n))
			}
		}
	}
	if lerr := appendLog(r.Paths.Log, rec); lerr != nil {
		r.say("WARNING: could not write the task log %s: %v", r.Paths.Log, lerr)
		if err == nil {
			err = fmt.Errorf("the backup succeeded but the task log %s could not be written: %w", r.Paths.Log, lerr)
		}
	}
	return rec, err
}

func wantNotify(on string, rec *Record) bool {
	switch on {
	case "always":
		return true
	case "success":
		return !rec.Failed()
	}
	return rec.Failed()
}

func (r *Runner) run(ctx context.Context, t *Task, force string, rec *Record) error {
	sc, _ := ParseScheme(t.Scheme)
	if err := engine.CheckFolder(ctx, t.Dest); err != nil {
		if r.IfDestPresent {
			rec.Result = "skipped"
			rec.Error = fmt.Sprintf("dest %s is not there", t.Dest)
			return nil
		}
		if engine.IsURL(t.Dest) {
			return fmt.Errorf("task %q: dest: %w", t.Name, err)
		}
		return &kindError{fmt.Sprintf("task %q: dest %s does not exist or is not a folder; create it, or mount the share or disk it is on (the task never creates it: a missing mount point would fill the system disk)", t.Name, t.Dest), fs.ErrNotExist}
	}
	cat, err := loadCatalog(r.Paths.State, t.Name)
	if err != nil {
		return err
	}
	cat.check(ctx, rec)
	if err := cat.save(); err != nil {
		return err
	}
	if t.Pre != "" {
		r.say("Running the pre command: %s", t.Pre)
		rec.Pre = runHook(ctx, t.Pre, hookTimeout(t.PreTimeout))
		if !rec.Pre.OK() {
			if t.OnPreFailure != "continue" {
				err := fmt.Errorf("task %q: pre command %s; no backup was made (on-pre-failure: skip)", t.Name, rec.Pre.Outcome())
				rec.Result = "skipped"
				r.post(ctx, t, rec)
				return err
			}
			rec.warn("pre command %s; the backup went on (on-pre-failure: continue)", rec.Pre.Outcome())
		}
	}
	err = r.backup(ctx, t, sc, cat, force, rec)
	if err == nil {
		err = r.retain(ctx, t, sc, cat, rec)
	}
	r.post(ctx, t, rec)
	return err
}

func (r *Runner) post(ctx context.Context, t *Task, rec *Record) {
	if t.Post == "" {
		return
	}
	r.say("Running the post command: %s", t.Post)
	// The post command undoes the pre command (a stopped service is
	// started again): it runs even when the run was cancelled.
	rec.Post = runHook(context.WithoutCancel(ctx), t.Post, hookTimeout(t.PostTimeout))
	if !rec.Post.OK() {
		rec.warn("post command %s", rec.Post.Outcome())
	}
}

// imageName is a new image's path: TASK-YYYYMMDD-HHMMSS-KIND.lbi in dest.
func imageName(ctx context.Context, dest, task, kind string, at time.Time) string {
	short := map[string]string{"full": "full", "incremental": "inc", "differential": "diff"}[kind]
	base := fileName(task) + "-" + at.Format("20060102-150405") + "-" + short
	p := engine.JoinImage(dest, base+".lbi")
	for i := 2; engine.ImageExists(ctx, p); i++ {
		p = engine.JoinImage(dest, fmt.Sprintf("%s-%d.lbi", base, i))
	}
	return p
}

func (r *Runner) backup(ctx context.Context, t *Task, sc Scheme, cat *catalog, force string, rec *Record) error {
	kind, base := sc.NextKind(cat.Entries)
	switch force {
	case "":
	case "full":
		kind, base = "full", nil
	case "incremental", "differential":
		if len(cat.Entries) == 0 {
			rec.warn("the task has no full backup yet: this run writes one instead of the %s asked for", force)
			kind, base = "full", nil
			break
		}
		gs := groups(cat.Entries)
		g := gs[len(gs)-1]
		kind, base = force, &g[len(g)-1]
		if force == "differential" {
			base = &g[0]
		}
	default:
		return fmt.Errorf("unknown kind %q: use full, incremental or differential", force)
	}
	rec.Kind = kind
	sk, dev, _ := ParseSource(t.Source)
	if sk == "system" {
		var err error
		if dev, err = engine.SystemDisk(); err != nil {
			return fmt.Errorf("task %q: source system: %w", t.Name, err)
		}
	}
	rec.Source = dev
	o := engine.BackupOptions{Source: dev, Kind: images.KindDisk, Output: imageName(ctx, t.Dest, t.Name, kind, rec.Start),
		SectorBySector: t.SectorBySector, ToolVersion: r.Version, Progress: r.Progress, Log: r.Log,
		Warn: func(m string) { rec.warn("%s", m) }}
	if sk == "part" {
		o.Kind = images.KindPartition
	}
	var err error
	if o.Compression, err = images.ParseLevel(orDefault(t.Compression, "normal")); err != nil {
		return err
	}
	if t.Split != "" {
		o.SplitSize, _ = engine.ParseSize(t.Split)
	}
	var pw []byte
	if t.Encrypt {
		if pw, err = engine.ReadPasswordFile(t.PasswordFile); err != nil {
			return fmt.Errorf("task %q: password-file: %w", t.Name, err)
		}
	}
	switch kind {
	case "full":
		if t.Encrypt {
			o.Password, o.Cipher = pw, images.CipherAES256GCM
		}
	case "incremental", "differential":
		if kind == "incremental" {
			o.Incremental = base.File
		} else {
			o.Differential = base.File
		}
		o.ChainPassword = func() ([]byte, error) { return pw, nil }
		if t.Encrypt {
			o.ChainEncryption = engine.Encryption{Require: true, PasswordGiven: true}
		}
	}
	r.say("Task %s: starting a %s backup of %s into %s", t.Name, kind, dev, o.Output)
	res, err := engine.Backup(ctx, o)
	if err != nil {
		return fmt.Errorf("task %q: %s backup of %s into %s: %w", t.Name, kind, dev, t.Dest, err)
	}
	rec.Image, rec.Stored, rec.SourceSize, rec.Read = res.Image, res.Stored, res.SourceSize, res.SourceSize-res.Unused
	// Prove the output: open the new image (and its chain), record what
	// it needs; with check-after read every byte back.
	e, err := describe(ctx, res.Image, kind, pw, rec.Start)
	if err != nil {
		return fmt.Errorf("task %q: the new image %s does not read back: %w", t.Name, res.Image, err)
	}
	if t.CheckAfter {
		r.say("Checking %s", res.Image)
		if _, err := engine.Check(ctx, engine.CheckOptions{Image: res.Image, Password: func() ([]byte, error) { return pw, nil }}); err != nil {
			return fmt.Errorf("task %q: the new image %s fails its check: %w", t.Name, res.Image, err)
		}
	}
	cat.Entries = append(cat.Entries, *e)
	if err := cat.save(); err != nil {
		return fmt.Errorf("task %q: the image %s was written, but the task's catalogue could not be saved (retention will not know it): %w", t.Name, res.Image, err)
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// describe opens an image the task wrote (with the chain it needs) and
// returns its catalogue entry.
func describe(ctx context.Context, file, kind string, pw []byte, created time.Time) (*Entry, error) {
	ii, err := engine.ChainInfo(ctx, file, func() ([]byte, error) { return pw, nil })
	if err != nil {
		return nil, err
	}
	info := ii.Info
	e := &Entry{File: file, UUID: info.UUID, Kind: kind, Parent: info.ParentUUID, Created: created, Size: info.FileSize}
	for _, p := range ii.Chain {
		if p.Missing {
			return nil, fmt.Errorf("its earlier point %s (%s) is missing", p.File, p.UUID)
		}
		if p.UUID != info.UUID {
			e.Needs = append(e.Needs, p.UUID)
		}
	}
	return e, nil
}

// retain applies the scheme's retention after a good run.
func (r *Runner) retain(ctx context.Context, t *Task, sc Scheme, cat *catalog, rec *Record) error {
	p := sc.Retain(cat.Entries)
	for _, n := range p.Notes {
		rec.warn("%s", n)
	}
	if p.MergeNewest {
		newest := cat.Entries[len(cat.Entries)-1]
		out := imageName(ctx, t.Dest, t.Name, "full", rec.Start)
		r.say("Merging %s into the full backup %s (max-size=%s)", filepath.Base(newest.File), filepath.Base(out), formatSize(sc.MaxSize))
		var pw []byte
		if t.Encrypt {
			var err error
			if pw, err = engine.ReadPasswordFile(t.PasswordFile); err != nil {
				return err
			}
		}
		mo := engine.MergeOptions{Image: newest.File, Output: out, Password: func() ([]byte, error) { return pw, nil }, ToolVersion: r.Version, Log: r.Log}
		if t.Split != "" {
			mo.SplitSize, _ = engine.ParseSize(t.Split)
		}
		if _, err := engine.Merge(ctx, mo); err != nil {
			rec.warn("merge forward of %s failed, nothing was deleted: %v", newest.File, err)
			return nil
		}
		if _, err := engine.Check(ctx, engine.CheckOptions{Image: out, Password: func() ([]byte, error) { return pw, nil }}); err != nil {
			os.Remove(out)
			rec.warn("the merged image %s failed its check and was removed; nothing was deleted: %v", out, err)
			return nil
		}
		e, err := describe(ctx, out, "full", pw, rec.Start)
		if err != nil {
			return err
		}
		e.Merged = true
		cat.Entries = append(cat.Entries, *e)
		rec.Merged = out
		if err := cat.save(); err != nil {
			return err
		}
	}
	if len(p.Delete) == 0 {
		return nil
	}
	parents := folderParents(ctx, t.Dest, cat.Entries)
	keep := needed(p.Delete, parents)
	for _, e := range p.Delete {
		if slices.Contains(keep, e.UUID) {
			rec.warn("kept %s: an image outside the task's retention still builds on it", e.File)
			continue
		}
		if err := engine.RemoveImage(ctx, e.File, e.UUID); err != nil {
			rec.warn("could not delete %s: %v", e.File, err)
			continue
		}
		r.say("Deleted %s (%s, %s)", e.File, e.Kind, e.Created.Format("2006-01-02 15:04"))
		rec.Deleted = append(rec.Deleted, e.File)
		cat.Entries = slices.DeleteFunc(cat.Entries, func(x Entry) bool { return x.UUID == e.UUID })
	}
	return cat.save()
}

// folderParents maps the UUID of every image in dest (and of every
// catalogued one) to its parent's, read from the headers alone.
func folderParents(ctx context.Context, dest string, es []Entry) map[string]string {
	m := map[string]string{}
	for _, e := range es {
		m[e.UUID] = e.Parent
	}
	for _, p := range engine.ListImages(dest) {
		if i, err := engine.ImageHeader(ctx, p); err == nil {
			m[i.UUID] = i.ParentUUID
		}
	}
	return m
}

// Images lists the images the task wrote and still counts, oldest first.
func Images(state, task string) ([]Entry, error) {
	c, err := loadCatalog(state, task)
	if err != nil {
		return nil, err
	}
	return c.Entries, nil
}

// catalog is the list of images a task wrote, oldest first.
type catalog struct {
	Task    string  `json:"task"`
	Entries []Entry `json:"images"`
	path    string
}

func catalogPath(state, task string) string {
	return filepath.Join(state, fileName(task)+".images.json")
}

func loadCatalog(state, task string) (*catalog, error) {
	c := &catalog{Task: task, path: catalogPath(state, task)}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("the catalogue of task %q, %s, is damaged (%v); move it away to start the task afresh (its images stay, but retention will not remove them)", task, c.path, err)
	}
	return c, nil
}

func (c *catalog) save() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(c.path, append(b, '\n'), 0o600)
}

// check drops images that are gone and stops the chain at a point that
// no longer reads as the image the task wrote: the next run is then a full
// backup.
func (c *catalog) check(ctx context.Context, rec *Record) {
	var kept []Entry
	for _, e := range c.Entries {
		info, err := engine.ImageHeader(ctx, e.File)
		if errors.Is(err, fs.ErrNotExist) {
			rec.warn("%s, written by this task, is gone; the task no longer counts it", e.File)
			continue
		}
		if err != nil {
			rec.warn("%s, written by this task, does not open (%v); the task no longer counts it and leaves the file alone", e.File, err)
			continue
		}
		if u := info.UUID; u != e.UUID {
			rec.warn("%s now holds another image than the one this task wrote; the task no longer counts it and leaves it alone", e.File)
			continue
		}
		kept = append(kept, e)
	}
	// A point whose chain lost a member cannot be built on: the next run
	// starts a new group.
	have := map[string]bool{}
	for _, e := range kept {
		have[e.UUID] = true
	}
	for i, e := range kept {
		for _, n := range e.Needs {
			if !have[n] {
				rec.warn("%s needs an earlier point that is gone; the next point starts a new full backup", e.File)
				kept[i].Kind = "orphan"
				break
			}
		}
	}
	c.Entries = kept
}
