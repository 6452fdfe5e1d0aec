//go:build linux

package rescue

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
)

// resolveFile finds a file named by the filesystem that holds it.
func (e *env) resolveFile(spec string) (string, error) {
	fs, err := ParseFileSpec(spec)
	if err != nil {
		return "", err
	}
	if fs.By == "path" || fs.By == "url" {
		return fs.Path, nil
	}
	for _, m := range e.mounts {
		// LABEL= matches the filesystem label or the GPT partition name:
		// FAT labels hold 11 characters, so LIFEBOAT-DATA is a name.
		if fs.By == "label" && (m.label == fs.Key || m.partName == fs.Key) || fs.By == "uuid" && strings.EqualFold(m.uuid, fs.Key) || fs.By == "device" && m.dev == fs.Key {
			p := filepath.Join(m.dir, filepath.FromSlash(fs.Path))
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%s: the filesystem %s=%s is mounted at %s but has no %s: %w", spec, strings.ToUpper(fs.By), fs.Key, m.dir, fs.Path, err)
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: no mounted filesystem has %s %s; attach the disk that holds it (found: %s)", spec, fs.By, fs.Key, e.mountList())
}

func (e *env) mountList() string {
	var s []string
	for _, m := range e.mounts {
		s = append(s, fmt.Sprintf("%s %s label=%q", m.dev, m.fstype, m.label))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

// resolveTarget finds the target disk. first-empty-disk is the first disk
// with no partition table and only zeros in its first and last MiB.
func (e *env) resolveTarget(spec, image string) (string, error) {
	disks, err := engine.Disks()
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(spec, "/dev/"):
		return spec, nil
	case strings.HasPrefix(spec, "serial="):
		want := strings.TrimPrefix(spec, "serial=")
		for _, d := range disks {
			if d.Serial == want {
				return d.Path, nil
			}
		}
		return "", fmt.Errorf("lifeboat.target=%s: no disk has that serial; disks: %s", spec, diskList(disks))
	case spec == "first-empty-disk":
		for _, d := range disks {
			if d.Bus == "loop" || d.ReadOnly || strings.HasPrefix(d.Name, "sr") {
				continue
			}
			if holds, _ := blockdev.Holds(d.Path, image); holds {
				continue
			}
			if empty, _ := diskEmpty(d.Path); empty && d.Table == "" {
				return d.Path, nil
			}
		}
		return "", fmt.Errorf("lifeboat.target=first-empty-disk: no disk is empty (no partition table, zeros in its first and last MiB); disks: %s", diskList(disks))
	}
	return "", fmt.Errorf("lifeboat.target=%s: use /dev/DISK, serial=SERIAL or first-empty-disk", spec)
}

func diskList(ds []engine.DiskInfo) string {
	var s []string
	for _, d := range ds {
		if d.Bus != "loop" {
			s = append(s, fmt.Sprintf("%s (%s, serial %q, table %q)", d.Path, engine.HumanBytes(d.Size), d.Serial, d.Table))
		}
	}
	return strings.Join(s, ", ")
}

// diskEmpty reports whether the first and last MiB of a disk are zeros.
func diskEmpty(p string) (bool, error) {
	d, err := blockdev.Open(p, blockdev.ReadOnly)
	if err != nil {
		return false, err
	}
	defer d.Close()
	n := min(d.Size, 1<<20)
	buf := make([]byte, n)
	for _, off := range []int64{0, d.Size - n} {
		if _, err := d.ReadAt(buf, off); err != nil {
			return false, err
		}
		for _, b := range buf {
			if b != 0 {
				return false, nil
			}
		}
	}
	return true, nil
}

func (e *env) runJob(ctx context.Context, j Job) {
	start := time.Now()
	<-e.settled // the image or the target may be on a USB stick still arriving
	if engine.IsURL(j.Image) || engine.IsURL(j.Credentials) {
		wait := cmp.Or(j.NetWait, networkWait)
		select {
		case <-e.net.up:
		case <-time.After(wait):
			e.fail(j, "", notFound(fmt.Errorf("image %s: no network address after %v: %s", j.Image, wait, e.net.problem())))
			return
		}
	}
	if j.S3Endpoint != "" {
		os.Setenv(engine.S3EndpointEnv, j.S3Endpoint)
	}
	if j.Credentials != "" {
		// The engine's S3 and SMB clients read the keys from the file
		// themselves: they never pass through this process's output.
		p, err := e.credentials(j.Credentials)
		if err != nil {
			e.fail(j, "", notFound(fmt.Errorf("lifeboat.credentials: %w", err)))
			return
		}
		if engine.IsSMB(j.Image) {
			os.Setenv(engine.SMBCredentialsEnv, p)
		} else {
			os.Setenv("AWS_SHARED_CREDENTIALS_FILE", p)
		}
	}
	image, err := e.resolveFile(j.Image)
	if err != nil {
		e.fail(j, "", notFound(err))
		return
	}
	target, err := e.resolveTarget(j.Target, image)
	if err != nil {
		e.fail(j, "", refused(err))
		return
	}
	if !j.Force && !strings.HasPrefix(j.Target, "first-empty") {
		if empty, err := diskEmpty(target); err == nil && !empty {
			e.fail(j, target, refused(fmt.Errorf("target %s is not empty (it has data in its first or last MiB); add lifeboat.force=1 to overwrite it", target)))
			return
		}
	}
	var pw func() ([]byte, error)
	if j.PasswordFile != "" {
		pw = func() ([]byte, error) {
			p, err := e.resolveFile(j.PasswordFile)
			if err != nil {
				return nil, err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			line, _, _ := strings.Cut(string(b), "\n")
			return []byte(strings.TrimRight(line, "\r")), nil
		}
	}
	if err := e.unmountDisk(target); err != nil {
		e.fail(j, target, refused(err))
		return
	}
	e.say("lifeboat: restoring %s to %s", image, target)
	res, err := engine.Restore(ctx, engine.RestoreOptions{
		Image: image, Target: target, Partition: j.Partition, Password: pw, Layout: j.layoutOptions(),
		Encryption: engine.Encryption{Require: j.RequireEncrypted, PasswordGiven: j.PasswordFile != "",
			Warn: func(msg string) { e.say("lifeboat: warning: %s", msg) }},
		Progress: &consoleProgress{e: e},
	})
	if err != nil {
		e.fail(j, target, err)
		return
	}
	e.report(j, okLine(j.Action, image, target, res, time.Since(start), e.platform))
}

// report prints the result line and, if the job says where, POSTs it.
func (e *env) report(j Job, line string) {
	e.say("%s", line)
	if j.Report == "" {
		return
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for attempt := range 3 {
		resp, err := c.Post(j.Report, "text/plain", strings.NewReader(line+"\n"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if ue, ok := err.(*url.Error); ok {
			ue.URL = redactURL(ue.URL)
		}
		e.say("lifeboat: report to %s failed (%v)", redactURL(j.Report), err)
		time.Sleep(time.Duration(attempt+1) * time.Second)
	}
}

// credentials is the path of the keys file: a file on a disk, or the keys
// the PXE server hands this boot (once), kept in a file in memory (the
// initramfs) that only root may read.
func (e *env) credentials(spec string) (string, error) {
	if !engine.IsURL(spec) {
		return e.resolveFile(spec)
	}
	c := &http.Client{Timeout: 20 * time.Second}
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * time.Second)
		}
		resp, err := c.Get(spec)
		if err != nil {
			if ue, ok := err.(*url.Error); ok {
				ue.URL = redactURL(ue.URL)
			}
			last = err
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			// 403: another fetch took them first, or a new boot
			// replaced this one's token; asking again cannot help.
			return "", fmt.Errorf("%s: the server answered %s", redactURL(spec), resp.Status)
		}
		if err != nil {
			last = err
			continue
		}
		d, err := os.MkdirTemp("", "lifeboat-keys")
		if err != nil {
			return "", err
		}
		p := filepath.Join(d, "credentials")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return "", err
		}
		return p, nil
	}
	return "", fmt.Errorf("%s: %w", redactURL(spec), last)
}

// fail reports a failed job with the exit code engine.ExitCode gives err.
func (e *env) fail(j Job, target string, err error) {
	e.result(j, engine.ExitCode(err), target, err)
}

// result reports a failed job with an exit code from engine's table; fail
// is the usual way in, result the way for codes no error carries (a wrong
// command line is engine.ExitUsage).
func (e *env) result(j Job, code int, target string, err error) {
	e.say("lifeboat: %v", err)
	e.report(j, failedLine(code, j.Action, target, e.platform, err.Error()))
}

type consoleProgress struct {
	e    *env
	last time.Time
}

func (p *consoleProgress) Report(s engine.Status) {
	if !s.Final && time.Since(p.last) < 3*time.Second {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if s.Total > 0 {
		pct = float64(s.Done) * 100 / float64(s.Total)
	}
	p.e.say("lifeboat: %s %5.1f%% %s of %s, %s/s", s.Stage, pct, engine.HumanBytes(s.Done), engine.HumanBytes(s.Total), engine.HumanBytes(int64(s.Rate)))
}
