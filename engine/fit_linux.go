package engine

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine/fsmount"
	"github.com/lifeboat-rescue/lifeboat/internal/command"
)

var (
	resizeMinRE = regexp.MustCompile(`Estimated minimum size of the filesystem: (\d+)`)
	ntfsMinRE   = regexp.MustCompile(`You might resize at (\d+) bytes`)
)

// fsMinSize asks the filesystem's own tool how small it can become, on a
// read-only device over r.
func fsMinSize(ctx context.Context, r io.ReaderAt, size int64, fsType string) (int64, error) {
	dev, err := fsmount.NewDevice(r, size, "lifeboat-fit", false)
	if err != nil {
		return 0, err
	}
	defer dev.Close()
	switch fsType {
	case "ext2", "ext3", "ext4":
		out, err := output(ctx, "resize2fs", "-P", dev.Path)
		m := resizeMinRE.FindStringSubmatch(out)
		if m == nil {
			return 0, cmp.Or(err, fmt.Errorf("resize2fs -P printed no minimum: %s", strings.TrimSpace(out)))
		}
		// resize2fs counts in blocks: the superblock's s_log_block_size
		// (offset 24 of the superblock at 1024) says how large they are.
		var sb [4]byte
		if _, err := r.ReadAt(sb[:], 1024+24); err != nil {
			return 0, err
		}
		logBS := binary.LittleEndian.Uint32(sb[:])
		if logBS > 6 {
			return 0, fmt.Errorf("implausible block size (log %d) in the superblock", logBS)
		}
		blocks, _ := strconv.ParseInt(m[1], 10, 64)
		return blocks * (1024 << logBS), nil
	case "ntfs":
		out, err := output(ctx, "ntfsresize", "--info", "--force", "--no-progress-bar", dev.Path)
		m := ntfsMinRE.FindStringSubmatch(out)
		if m == nil {
			return 0, cmp.Or(err, fmt.Errorf("ntfsresize --info printed no minimum: %s", strings.TrimSpace(out)))
		}
		return strconv.ParseInt(m[1], 10, 64)
	}
	return 0, fmt.Errorf("%s cannot be shrunk", fsType)
}

// shrinkFS shrinks the filesystem in r (size bytes) to newSize on a
// copy-on-write view of it, checks that it now fits in newSize bytes, and
// returns the view.
func shrinkFS(ctx context.Context, r io.ReaderAt, size, newSize int64, fsType string) (_ *cowFile, err error) {
	c, err := newCOW(r, size, "")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	dev, err := fsmount.NewDevice(c, size, "lifeboat-shrink", true)
	if err != nil {
		return nil, err
	}
	switch fsType {
	case "ntfs":
		err = run(ctx, strings.NewReader("y\n"), "ntfsresize", "--force", "--force", "--no-progress-bar", "-s", strconv.FormatInt(newSize, 10), dev.Path)
	default:
		// resize2fs insists on a freshly checked filesystem; the check
		// writes only to the view.
		if err = run(ctx, nil, "e2fsck", "-f", "-y", dev.Path); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() <= 1 {
				err = nil // errors corrected (in the view)
			}
		}
		if err == nil {
			err = run(ctx, nil, "resize2fs", dev.Path, strconv.FormatInt(newSize/1024, 10)+"K")
		}
	}
	dev.Close()
	if err != nil {
		return nil, err
	}
	// The shrunk filesystem, alone in its new size, must check clean.
	check, err := fsmount.NewDevice(io.NewSectionReader(c, 0, newSize), newSize, "lifeboat-shrunk", false)
	if err != nil {
		return nil, err
	}
	defer check.Close()
	if fsType == "ntfs" {
		_, err = output(ctx, "ntfsresize", "--info", "--force", "--no-progress-bar", check.Path)
	} else {
		err = run(ctx, nil, "e2fsck", "-f", "-n", check.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("the shrunk filesystem does not check clean in its new size: %w", err)
	}
	return c, nil
}

// output runs a tool (in childEnv) and returns what it printed on
// standard output; a failure carries its argv and standard error.
func output(ctx context.Context, argv ...string) (string, error) {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Env = childEnv()
	b, err := command.Run(ctx, c)
	return string(b), err
}
