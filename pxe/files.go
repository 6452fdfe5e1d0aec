package pxe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// errRefused is returned for names that try to leave a served directory or
// name hidden files. The client gets "not found"-like refusals; the log
// gets the name.
var errRefused = errors.New("refused: only plain relative names of files inside the served directories are allowed")

// cleanName checks a file name that came from the network: it must be a
// relative slash-separated path without "." or ".." elements, empty
// elements, backslashes, NUL bytes or elements starting with a dot. The
// os.Root it is opened through then refuses symlinks that lead outside.
func cleanName(name string) (string, error) {
	if name == "" || len(name) > 1024 || strings.ContainsAny(name, "\\\x00") || !fs.ValidPath(name) || name == "." {
		return "", errRefused
	}
	for _, e := range strings.Split(name, "/") {
		if strings.HasPrefix(e, ".") {
			return "", errRefused
		}
	}
	return name, nil
}

// tree is one served directory.
type tree struct {
	dir  string
	root *os.Root
}

func openTree(dir string) (*tree, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &tree{dir: dir, root: r}, nil
}

func (t *tree) close() {
	if t != nil {
		t.root.Close()
	}
}

// open opens a regular file of t by a cleaned name.
func (t *tree) open(name string) (*os.File, fs.FileInfo, error) {
	if t == nil {
		return nil, nil, fs.ErrNotExist
	}
	n, err := cleanName(name)
	if err != nil {
		return nil, nil, err
	}
	f, err := t.root.Open(n)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file: %w", name, fs.ErrNotExist)
	}
	return f, st, nil
}

// files maps the names clients ask for onto the served directories:
//
//	undionly.kpxe, snponly.efi, ipxe.efi   (and ipxe/NAME)  → IPXEDir
//	rescue/NAME                                            → Bundle
//	secureboot/{shimx64,grubx64,mmx64}.efi                 → Bundle's boot/ (secureBootFiles)
//	images/PATH                                            → Images (HTTP only)
//
// and grub/… is made per client (Server.grubConfig).
type files struct {
	ipxe, rescue, images *tree
	// remote serves images/ from an image store (s3://) instead.
	remote *remoteImages
	// shim says whether secureboot/ is served (Server.shim).
	shim bool
}

// openSecureBoot opens a file of the signed chain by its served name.
func (f *files) openSecureBoot(name string) (*os.File, fs.FileInfo, error) {
	p, ok := secureBootFiles[name]
	if !ok || !f.shim {
		return nil, nil, fs.ErrNotExist
	}
	return f.rescue.open(p)
}

// openTFTP resolves a TFTP file name. TFTP serves the boot loaders and the
// rescue bundle, not images (far too slow for them).
func (f *files) openTFTP(name string) (*os.File, fs.FileInfo, error) {
	n, err := cleanName(name)
	if err != nil {
		return nil, nil, err
	}
	if rest, ok := strings.CutPrefix(n, "rescue/"); ok {
		return f.rescue.open(rest)
	}
	if rest, ok := strings.CutPrefix(n, secureBootDir+"/"); ok {
		return f.openSecureBoot(rest)
	}
	if rest, ok := strings.CutPrefix(n, "ipxe/"); ok {
		return f.ipxe.open(rest)
	}
	if strings.Contains(n, "/") {
		return nil, nil, fs.ErrNotExist
	}
	return f.ipxe.open(n)
}

// remoteImages serves images/ from an image store (an S3 prefix or a
// folder of an SMB share): each object is opened
// once and kept (with its read windows) while clients read it in ranges;
// the least recently used of more than a few is dropped.
type remoteImages struct {
	prefix string
	mu     sync.Mutex
	open_  map[string]*remoteObject
	order  []string
}

type remoteObject struct {
	r    io.ReaderAt
	size int64
}

const remoteObjects = 4

func newRemoteImages(prefix string) *remoteImages {
	return &remoteImages{prefix: strings.TrimSuffix(prefix, "/"), open_: map[string]*remoteObject{}}
}

// remoteFile is one response's view of an object.
type remoteFile struct{ *io.SectionReader }

func (remoteFile) Close() error { return nil }

type remoteInfo struct {
	name string
	size int64
}

func (i remoteInfo) Name() string       { return path.Base(i.name) }
func (i remoteInfo) Size() int64        { return i.size }
func (i remoteInfo) Mode() fs.FileMode  { return 0o444 }
func (i remoteInfo) ModTime() time.Time { return time.Time{} }
func (i remoteInfo) IsDir() bool        { return false }
func (i remoteInfo) Sys() any           { return nil }

func (ri *remoteImages) open(name string) (servedFile, fs.FileInfo, error) {
	n, err := cleanName(name)
	if err != nil {
		return nil, nil, err
	}
	ri.mu.Lock()
	o, ok := ri.open_[n]
	if ok {
		if i := slices.Index(ri.order, n); i >= 0 {
			ri.order = append(slices.Delete(ri.order, i, i+1), n)
		}
	}
	ri.mu.Unlock()
	if !ok {
		r, size, err := engine.OpenObject(context.Background(), ri.prefix+"/"+n)
		if err != nil {
			return nil, nil, err
		}
		o = &remoteObject{r: r, size: size}
		ri.mu.Lock()
		if prev, dup := ri.open_[n]; dup {
			o = prev
		} else {
			ri.open_[n] = o
			ri.order = append(ri.order, n)
			for len(ri.order) > remoteObjects {
				delete(ri.open_, ri.order[0])
				ri.order = ri.order[1:]
			}
		}
		ri.mu.Unlock()
	}
	return remoteFile{io.NewSectionReader(o.r, 0, o.size)}, remoteInfo{name: n, size: o.size}, nil
}
