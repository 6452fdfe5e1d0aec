//go:build linux

package kernel

// The host's Debian tools Fetch drives: apt-cache and apt-get to find and
// download the kernel package, depmod for the module index, and the lock
// that lets concurrent builds share one cache.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/internal/command"
	"golang.org/x/sys/unix"
)

// currentPackage returns the versioned kernel package linux-image-amd64
// depends on and its kernel release.
func currentPackage(ctx context.Context, log *slog.Logger) (pkg, kver string, err error) {
	argv := []string{"apt-cache", "depends", metaPackage}
	out, err := run(ctx, "", argv...)
	if err == nil {
		if pkg, kver, err = parseDepends(out); err == nil {
			return pkg, kver, nil
		}
	}
	if ctx.Err() != nil {
		return "", "", err
	}
	// A fresh container has no package lists: fetch them once.
	log.Info("kernel: apt-get update started", "why", err)
	start := time.Now()
	if _, err := run(ctx, "", aptGet("update")...); err != nil {
		log.Error("kernel: apt-get update failed", "err", err)
		return "", "", err
	}
	log.Info("kernel: apt-get update finished", "took", time.Since(start).Round(time.Millisecond))
	out, err = run(ctx, "", argv...)
	if err != nil {
		return "", "", err
	}
	pkg, kver, err = parseDepends(out)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return pkg, kver, nil
}

// parseDepends finds the versioned kernel package in the output of
// apt-cache depends linux-image-amd64:
//
//	linux-image-amd64
//	  Depends: linux-image-6.1.0-56-amd64
func parseDepends(out []byte) (pkg, kver string, err error) {
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		// "|Depends:" marks an alternative; either way it is a dependency.
		dep, ok := strings.CutPrefix(strings.TrimLeft(s.Text(), " \t|"), "Depends:")
		if !ok {
			continue
		}
		dep = strings.TrimSpace(dep)
		if v, ok := strings.CutPrefix(dep, "linux-image-"); ok && dep != metaPackage && v != "" && !strings.ContainsAny(v, " <>/") {
			return dep, v, nil
		}
	}
	return "", "", fmt.Errorf("no versioned linux-image package among the dependencies of %s; is this a Debian amd64 host with apt sources?", metaPackage)
}

// debFile is one line of apt-get download --print-uris:
//
//	'http://…/linux-image-…_amd64.deb' linux-image-…_amd64.deb 70550672 SHA256:a86e…
type debFile struct {
	name   string
	size   int64
	sha256 string // hex, "" if apt printed another hash
}

func parsePrintURIs(out []byte) (debFile, error) {
	for _, line := range strings.Split(string(out), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 3 || !strings.HasPrefix(fs[0], "'") {
			continue
		}
		var d debFile
		d.name = fs[1]
		if d.name != filepath.Base(d.name) || !strings.HasSuffix(d.name, ".deb") {
			return debFile{}, fmt.Errorf("unexpected file name %q", d.name)
		}
		size, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil {
			return debFile{}, fmt.Errorf("unexpected size in %q", line)
		}
		d.size = size
		if len(fs) > 3 {
			d.sha256, _ = strings.CutPrefix(fs[3], "SHA256:")
			if d.sha256 == fs[3] {
				d.sha256 = ""
			}
		}
		return d, nil
	}
	return debFile{}, fmt.Errorf("no download URI in %q", strings.TrimSpace(string(out)))
}

// verify checks a downloaded .deb against the size and hash apt expects.
func (d debFile) verify(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != d.size {
		return fmt.Errorf("%s has %d bytes, apt expects %d", path, fi.Size(), d.size)
	}
	if d.sha256 == "" {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.sha256 {
		return fmt.Errorf("%s has SHA256 %s, apt expects %s", path, got, d.sha256)
	}
	return nil
}

// aptGet returns an apt-get command line. As root, apt-get download drops
// to the _apt user, which cannot write into a cache under /root or /var:
// keep root.
func aptGet(args ...string) []string {
	argv := []string{"apt-get", "-q"}
	if os.Geteuid() == 0 {
		argv = append(argv, "-o", "APT::Sandbox::User=root")
	}
	return append(argv, args...)
}

// depmod generates modules.dep and friends for release kver under root.
func depmod(ctx context.Context, root, kver string) error {
	bin, err := depmodPath()
	if err != nil {
		return err
	}
	_, err = run(ctx, "", bin, "-b", root, kver)
	return err
}

// depmodDir runs depmod on a module directory anywhere: depmod (kmod 30)
// only knows <base>/lib/modules/<release>, so give it a base whose
// lib/modules/<release> is a symbolic link to dir. It writes through it.
func depmodDir(ctx context.Context, dir, kver string) error {
	base, err := os.MkdirTemp("", "lifeboat-depmod-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	if err := os.MkdirAll(filepath.Join(base, "lib", "modules"), 0o755); err != nil {
		return err
	}
	if err := os.Symlink(dir, filepath.Join(base, "lib", "modules", kver)); err != nil {
		return err
	}
	return depmod(ctx, base, kver)
}

// depmodPath finds depmod, which lives in /usr/sbin where a user's PATH may
// not reach.
func depmodPath() (string, error) {
	if p, err := exec.LookPath("depmod"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/depmod", "/sbin/depmod"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", &CommandError{Argv: []string{"depmod"}, Output: "depmod not found; install the kmod package (apt-get install kmod)", Err: exec.ErrNotFound}
}

// run runs argv in dir and returns its stdout. Output is in the C locale
// because it is parsed.
func run(ctx context.Context, dir string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	return command.Run(ctx, cmd)
}

// lockDir takes an exclusive lock on dir/.lock, waiting until ctx is done.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	name := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, &os.PathError{Op: "flock", Path: name, Err: err}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("kernel cache %s is locked by another process: %w", dir, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
