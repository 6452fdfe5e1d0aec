package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
)

// checkOutput refuses outputs that would destroy or corrupt the backup.
func checkOutput(o BackupOptions) error {
	inside := false
	if o.Source != "" {
		var err error
		inside, err = blockdev.Holds(o.Source, o.Output)
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return fmt.Errorf("check output %s: %w", o.Output, err)
		}
	}
	if inside {
		return refuse(o.Output, "it is stored on %s, the source being backed up (the image would copy itself)",
			"write the image to another disk, e.g. an external drive", o.Source)
	}
	if !o.Overwrite {
		if _, err := os.Lstat(o.Output); err == nil {
			return refuse(o.Output, "it already exists", "choose another name, or pass --overwrite to replace it")
		}
	}
	dir := parentDir(o.Output)
	if st, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("output folder %s does not exist; create it first or choose another: %w", dir, err)
		}
		return fmt.Errorf("output folder %s: %w", dir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("output folder %s is not a folder", dir)
	}
	return nil
}

func parentDir(p string) string {
	i := strings.LastIndexAny(p, `/\`)
	switch {
	case i < 0:
		return "."
	case i == 0:
		return p[:1]
	}
	return p[:i]
}
