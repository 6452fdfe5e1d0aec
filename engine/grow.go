package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/internal/command"
)

// growFS grows the filesystem of a partition that was made larger, with the
// filesystem's own tool run on a window of the target (a loop device over
// the partition's bytes), so it works the same for disks and image files.
// It returns a note for the user, and whether the filesystem was grown.
func growFS(ctx context.Context, log *slog.Logger, target string, number int, fsType string, off, oldSize, newSize int64) (note string, grown bool, err error) {
	var tool []string
	switch fsType {
	case "ext2", "ext3", "ext4":
		tool = []string{"resize2fs", "-f"}
	case "ntfs":
		tool = []string{"ntfsresize", "--force", "--force", "--no-progress-bar"}
	case "vfat", "exfat":
		return fmt.Sprintf("partition %d grew from %s to %s; its %s filesystem keeps its size (%s cannot be grown in place): the extra space is inside the partition but unused",
			number, HumanBytes(oldSize), HumanBytes(newSize), fsType, fsType), false, nil
	case "":
		return fmt.Sprintf("partition %d grew from %s to %s; its content is not a known filesystem and was not grown", number, HumanBytes(oldSize), HumanBytes(newSize)), false, nil
	default:
		return fmt.Sprintf("partition %d grew from %s to %s; its %s filesystem was not grown (grow it with its own tool)", number, HumanBytes(oldSize), HumanBytes(newSize), fsType), false, nil
	}
	if runtime.GOOS == "windows" {
		// Windows has neither tool; it extends NTFS itself.
		how := "extend the volume in Disk Management (Extend Volume) or with diskpart's extend"
		if fsType != "ntfs" {
			how = "grow it with resize2fs from the Lifeboat rescue media"
		}
		return fmt.Sprintf("partition %d grew from %s to %s; its %s filesystem keeps its old size until you %s",
			number, HumanBytes(oldSize), HumanBytes(newSize), fsType, how), false, nil
	}
	if _, err := exec.LookPath(tool[0]); err != nil {
		return "", false, fmt.Errorf("partition %d grew from %s to %s but %s, needed to grow its %s filesystem, is not installed (Debian package %s); the filesystem still has its old size: install it and run %s on the partition",
			number, HumanBytes(oldSize), HumanBytes(newSize), tool[0], fsType, map[string]string{"resize2fs": "e2fsprogs", "ntfsresize": "ntfs-3g"}[tool[0]], tool[0])
	}
	dev, detach, err := attachWindow(target, off, newSize)
	if err != nil {
		return "", false, fmt.Errorf("grow the filesystem of partition %d on %s: %w", number, target, err)
	}
	defer detach()
	log.Info("filesystem grow started", "target", target, "partition", number, "fs", fsType, "device", dev, "size", newSize)
	if fsType != "ntfs" {
		// resize2fs insists on a freshly checked filesystem.
		if err := run(ctx, nil, "e2fsck", "-f", "-y", dev); err != nil {
			var ee *exec.ExitError
			// 1: errors corrected; anything above is a real problem.
			if !errors.As(err, &ee) || ee.ExitCode() > 1 {
				return "", false, fmt.Errorf("partition %d: the restored %s filesystem does not check clean before growing: %w", number, fsType, err)
			}
		}
	}
	if err := run(ctx, strings.NewReader("y\n"), append(tool, dev)...); err != nil {
		return "", false, fmt.Errorf("partition %d: growing its %s filesystem failed (the partition is restored; the filesystem keeps its old size): %w", number, fsType, err)
	}
	log.Info("filesystem grow finished", "target", target, "partition", number)
	return fmt.Sprintf("partition %d and its %s filesystem grew from %s to %s", number, fsType, HumanBytes(oldSize), HumanBytes(newSize)), true, nil
}

// run runs a tool, in childEnv; its error carries the argv and what it
// printed. Every process the engine starts is started here.
func run(ctx context.Context, stdin *strings.Reader, argv ...string) error {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Env = childEnv()
	if stdin != nil {
		c.Stdin = stdin
	}
	return command.Combined(ctx, c)
}
