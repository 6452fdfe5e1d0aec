// Package rescue is the code that runs first inside Lifeboat's rescue
// environment (a Debian kernel and a u-root initramfs whose uinit is
// `lifeboat rescue`): it loads the drivers for the hardware present, brings
// up the network, mounts every readable filesystem read-only under /mnt,
// finds images, and then either runs the unattended job the kernel command
// line describes or offers a prompt on the console.
//
// The kernel command line drives unattended mode:
//
//	lifeboat.action=restore
//	lifeboat.image=LABEL=IMAGES:/backups/pc1.lbi   (or UUID=…:/path, /dev/sdb1:/path, /mnt/…, http://…, s3://BUCKET/KEY, smb://SERVER/SHARE/PATH)
//	lifeboat.target=first-empty-disk                (or /dev/sda, serial=WD-123)
//	lifeboat.partition=2                            (restore one partition only)
//	lifeboat.layout=fill                            (or keep, the default, or fit: onto a smaller disk)
//	lifeboat.password-file=LABEL=KEYS:/pc1.pw       (for encrypted images)
//	lifeboat.s3-endpoint=http://nas:7070            (the S3-compatible server of an s3:// image; default AWS)
//	lifeboat.credentials=LABEL=KEYS:/s3.cred        (keys of an s3:// image: an AWS credentials file, [default] aws_access_key_id = …;
//	                                                 of an smb:// image: username= and password= lines; never printed;
//	                                                 or the URL a PXE server's rule gives: http://SERVER/api/credentials/MAC?token=…)
//	lifeboat.force=1                                (allow a target that is not empty)
//	lifeboat.require-encrypted=1                    (refuse an image that is not encrypted)
//	lifeboat.done=poweroff                          (or reboot, or shell)
//	lifeboat.report=http://server/api/report/MAC    (POST the result line there)
//	lifeboat.netwait=90                             (seconds a job waits for a network address)
//	lifeboat.ui=prompt                              (the lifeboat> prompt instead of the text UI)
//
// Results are printed as one machine-readable line:
//
//	LIFEBOAT-RESULT status=ok exit=0 action=restore image=… target=/dev/vdb bytes=… range=… verified=… seconds=… secureboot=1 lockdown=integrity
//	LIFEBOAT-RESULT status=failed exit=5 action=restore target=… secureboot=0 lockdown=none reason="…"
//
// bytes= is what was written to the target; range= is the span of the
// target the restore covered (the image's disk or partition size).
package rescue

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"github.com/lifeboat-rescue/lifeboat/rescue/kernel"
)

// Action is what an unattended job does.
type Action int

const (
	ActionNone Action = iota
	ActionRestore
)

func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionRestore:
		return "restore"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Done is what happens after an unattended job.
type Done int

const (
	DonePowerOff Done = iota
	DoneReboot
	DoneShell
)

func (d Done) String() string {
	return [...]string{"poweroff", "reboot", "shell"}[d]
}

// UI is what the console offers when no job runs (or after one, with
// lifeboat.done=shell).
type UI int

const (
	UITUI    UI = iota // the text UI (package tui), the prompt one key away
	UIPrompt           // the line-based lifeboat> prompt, for scripts typing on a serial line
)

func (u UI) String() string {
	if u == UIPrompt {
		return "prompt"
	}
	return "tui"
}

// Job is an unattended job from the kernel command line.
type Job struct {
	Action    Action
	Image     string // image spec: LABEL=x:/path, UUID=x:/path, /dev/x:/path, or a path
	Target    string // /dev/x, serial=…, or first-empty-disk
	Partition int
	// Layout is how a disk image is laid out on a target of another
	// size (lifeboat.layout=keep|fill|fit; keep when not given).
	Layout       layout.Mode
	PasswordFile string // same spec forms as Image
	// S3Endpoint is the server of an s3:// image (lifeboat.s3-endpoint).
	S3Endpoint string
	// Credentials names an AWS credentials file (same spec forms as
	// Image) holding the keys of an s3:// image.
	Credentials string
	Force       bool
	// RequireEncrypted refuses an image that is not encrypted (a swapped
	// image on a share or server would otherwise be restored silently).
	RequireEncrypted bool
	Done             Done
	// Report is a URL the result line is POSTed to (the PXE server).
	Report string
	// UI is the console's interface (lifeboat.ui=tui|prompt).
	UI UI
	// NetWait is how long a job whose image is on the network waits for
	// an address (lifeboat.netwait=SECONDS); zero means 90 s.
	NetWait time.Duration
}

// layoutOptions are the restore's layout: as stored (keep), or laid out
// anew with partitions on 1 MiB boundaries as lifeboat restore does.
func (j Job) layoutOptions() engine.LayoutOptions {
	o := engine.LayoutOptions{Mode: j.Layout}
	if j.Layout != layout.Keep {
		o.Align = 1 << 20
	}
	return o
}

// ParseCmdline reads the lifeboat.* parameters of a kernel command line.
// Quoted values ("a b") are kept whole. Unknown lifeboat.* parameters are
// errors, so a typo does not silently turn an unattended restore into a
// prompt nobody answers.
func ParseCmdline(cmdline string) (Job, error) {
	var j Job
	for _, f := range kernel.SplitCmdline(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		if !strings.HasPrefix(k, "lifeboat.") {
			continue
		}
		switch strings.TrimPrefix(k, "lifeboat.") {
		case "action":
			switch v {
			case "restore":
				j.Action = ActionRestore
			case "", "none", "menu":
				j.Action = ActionNone
			default:
				return j, fmt.Errorf("lifeboat.action=%s: use restore (clone and backup come later)", v)
			}
		case "image":
			j.Image = v
		case "target":
			j.Target = v
		case "partition":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return j, fmt.Errorf("lifeboat.partition=%s: use a partition number from 1", v)
			}
			j.Partition = n
		case "layout":
			m, err := layout.ParseMode(v)
			if err != nil || m == layout.Manual {
				return j, fmt.Errorf("lifeboat.layout=%s: use keep (as stored), fill (grow into a larger disk) or fit (shrink onto a smaller one)", v)
			}
			j.Layout = m
		case "password-file", "password_file":
			j.PasswordFile = v
		case "s3-endpoint":
			if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
				return j, fmt.Errorf("lifeboat.s3-endpoint=%s: use http(s)://HOST[:PORT]", v)
			}
			j.S3Endpoint = v
		case "credentials":
			if fs, err := ParseFileSpec(v); err != nil || fs.By == "url" && !strings.Contains(v, "/api/credentials/") {
				return j, fmt.Errorf("lifeboat.credentials=%s: name a file on a disk (LABEL=KEYS:/s3.cred, UUID=…:/path, /dev/…:/path), or give the keys in the PXE server's rule (credentials:); keys are fetched over the network only from the server that booted this machine", redactURL(v))
			}
			j.Credentials = v
		case "report":
			if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
				return j, fmt.Errorf("lifeboat.report=%s: use an http:// URL", v)
			}
			j.Report = v
		case "ui":
			switch v {
			case "tui", "":
				j.UI = UITUI
			case "prompt":
				j.UI = UIPrompt
			default:
				return j, fmt.Errorf("lifeboat.ui=%s: use tui or prompt", v)
			}
		case "netwait":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 3600 {
				return j, fmt.Errorf("lifeboat.netwait=%s: give the seconds to wait for a network address, 1 to 3600", v)
			}
			j.NetWait = time.Duration(n) * time.Second
		case "debug":
			// handled by Run: library logs go to the console
		case "force":
			j.Force = v == "1" || v == "yes" || v == "true"
		case "require-encrypted", "require_encrypted":
			j.RequireEncrypted = v == "1" || v == "yes" || v == "true"
		case "done":
			switch v {
			case "poweroff", "":
				j.Done = DonePowerOff
			case "reboot":
				j.Done = DoneReboot
			case "shell", "menu":
				j.Done = DoneShell
			default:
				return j, fmt.Errorf("lifeboat.done=%s: use poweroff, reboot or shell", v)
			}
		default:
			return j, fmt.Errorf("unknown kernel parameter %s; see the README for the lifeboat.* parameters", k)
		}
	}
	if j.Action == ActionRestore {
		if j.Image == "" {
			return j, fmt.Errorf("lifeboat.action=restore needs lifeboat.image=LABEL=…:/path/to/image.lbi")
		}
		if j.Target == "" {
			return j, fmt.Errorf("lifeboat.action=restore needs lifeboat.target=/dev/… (or serial=…, or first-empty-disk)")
		}
	}
	return j, nil
}

// FileSpec is a file named by the filesystem that holds it.
type FileSpec struct {
	By   string // "label", "uuid", "device", "path" or "url"
	Key  string // the label, UUID or device
	Path string // inside that filesystem (or the whole path for "path")
}

// ParseFileSpec reads LABEL=x:/p, UUID=x:/p, /dev/x:/p, /p or an http(s)
// or s3 URL.
func ParseFileSpec(s string) (FileSpec, error) {
	switch {
	case strings.HasPrefix(s, "http://"), strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "s3://"), strings.HasPrefix(s, "smb://"):
		return FileSpec{By: "url", Path: s}, nil
	case strings.HasPrefix(s, "LABEL="), strings.HasPrefix(s, "UUID="):
		kind, rest, _ := strings.Cut(s, "=")
		key, p, ok := strings.Cut(rest, ":")
		if !ok || key == "" || !strings.HasPrefix(p, "/") {
			return FileSpec{}, fmt.Errorf("%q: write %s=NAME:/path/inside/it", s, kind)
		}
		return FileSpec{By: strings.ToLower(kind), Key: key, Path: p}, nil
	case strings.HasPrefix(s, "/dev/"):
		dev, p, ok := strings.Cut(s, ":")
		if !ok || !strings.HasPrefix(p, "/") {
			return FileSpec{}, fmt.Errorf("%q: write /dev/DEVICE:/path/inside/it", s)
		}
		return FileSpec{By: "device", Key: dev, Path: p}, nil
	case strings.HasPrefix(s, "/"):
		return FileSpec{By: "path", Path: s}, nil
	}
	return FileSpec{}, fmt.Errorf("%q: name the file as LABEL=NAME:/path, UUID=ID:/path, /dev/DEVICE:/path or an absolute path", s)
}

// ResultMarker starts the machine-readable result line of a job.
const ResultMarker = "LIFEBOAT-RESULT"

// okLine is the result line of a job that succeeded: bytes= is what was
// written to the target, range= the span of the target the restore
// covered; the platform's fields (secureboot=, lockdown=) come last.
func okLine(a Action, image, target string, res *engine.RestoreResult, elapsed time.Duration, p Platform) string {
	return fmt.Sprintf("%s status=ok exit=%d action=%s image=%s target=%s bytes=%d range=%d verified=%v seconds=%.1f %s",
		ResultMarker, engine.ExitOK, a, image, target, res.Written, res.Bytes, res.Verified, elapsed.Seconds(), p.Fields())
}

// failedLine is the result line of a job that failed. The reason stays
// last (quoted, double quotes made single), after the platform's fields,
// so that it reads to the end of the line.
func failedLine(code int, a Action, target string, p Platform, reason string) string {
	return fmt.Sprintf("%s status=failed exit=%d action=%s target=%s %s reason=\"%s\"",
		ResultMarker, code, a, target, p.Fields(), strings.ReplaceAll(reason, `"`, `'`))
}

// classed reads as err and also wraps class, so that engine.ExitCode (the
// one exit-code table) maps a job's own failures, such as an image that is
// not found or a target that is refused, as it maps the engine's.
type classed struct{ class, err error }

func (c *classed) Error() string   { return c.err.Error() }
func (c *classed) Unwrap() []error { return []error{c.class, c.err} }

// notFound marks err as a missing source: engine.ExitNotFound.
func notFound(err error) error { return &classed{fs.ErrNotExist, err} }

// refused marks err as a refusal before anything was written:
// engine.ExitRefused.
func refused(err error) error { return &classed{engine.ErrRefused, err} }

// redactURL is a URL for the console: its query (the PXE server's report
// token) left out.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
