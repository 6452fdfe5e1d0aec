//go:build !unix

package engine

import (
	"io/fs"
	"os"
)

// setMeta gives p the mode and modification time of info; link: p is a
// symbolic link (left as made).
func (x *extractor) setMeta(p string, info fs.FileInfo, link bool) {
	if link {
		return
	}
	os.Chmod(p, info.Mode().Perm())
	os.Chtimes(p, info.ModTime(), info.ModTime())
}

// freeSpace is unknown here: a full disk is found while writing.
func freeSpace(dir string) (int64, bool) { return 0, false }

// allocated is the file's size (how much of it is sparse is not asked).
func allocated(fi fs.FileInfo) int64 { return fi.Size() }
