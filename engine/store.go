package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lifeboat-rescue/lifeboat/images"
)

// A store is where image files live: a folder on this machine
// (localStore), a folder on an SMB share (smbStore), a prefix of an S3
// bucket (s3Store), or, for reading only, a web server (httpStore). Every
// part of the engine that creates, opens, lists or deletes an image file
// goes through storeFor, so a command that works on one store works on
// all of them.
type store interface {
	// create prepares a new image under name, after every check that can
	// refuse it (nothing is written before): an existing image without
	// overwrite, a missing bucket or folder, wrong keys, a split the store
	// cannot hold, an output inside the source. notes say what it
	// cleaned up first (an upload a killed backup left).
	create(ctx context.Context, name string, c createCheck) (imageOutput, []string, error)
	// open opens one file of an image for ranged reads (safe for
	// concurrent use).
	open(ctx context.Context, name string) (io.ReaderAt, int64, io.Closer, error)
	// list lists the images (first parts) directly in dir, by name.
	list(ctx context.Context, dir string) []string
	// remove deletes one file of an image.
	remove(ctx context.Context, name string) error
	// exists reports whether name is taken (by an image or an unfinished
	// one).
	exists(ctx context.Context, name string) bool
	// checkFolder checks that images can be written into dir.
	checkFolder(ctx context.Context, dir string) error
}

// createCheck is what create checks besides the name.
type createCheck struct {
	overwrite bool
	split     int64
	source    string // the disk being backed up, which must not hold the image
}

// An imageOutput is an image being written into a store: its writer
// writes under a temporary name (a .partial file, an unfinished multipart
// upload); after the writer's Commit, finish makes the image appear under
// its name and proves it by reading it back. Nothing stays under the name
// when either fails; abort removes what the temporary name holds.
type imageOutput interface {
	writer(wo images.WriterOptions) (*images.Writer, error)
	finish(ctx context.Context, w *images.Writer) error
	abort()
}

func storeFor(name string) store {
	switch {
	case IsS3(name):
		return s3Store{}
	case IsSMB(name):
		return smbStore{}
	case strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://"):
		return httpStore{}
	}
	return localStore{}
}

// IsURL reports whether an image is named by a URL (http, https, s3,
// smb): not a path on this machine.
func IsURL(s string) bool {
	_, local := storeFor(s).(localStore)
	return !local
}

// openImage opens an image from its store. Cancelling ctx ends every
// request of the image's reads, then and later.
func openImage(ctx context.Context, name string, o images.OpenOptions) (*images.Image, error) {
	st := storeFor(name)
	if _, local := st.(localStore); local {
		return images.Open(name, o) // which also refuses a .partial file
	}
	return images.OpenWith(name, func(n string) (io.ReaderAt, int64, io.Closer, error) { return st.open(ctx, n) }, o)
}

// createImage prepares a new image named name in its store.
func createImage(ctx context.Context, name string, c createCheck) (imageOutput, []string, error) {
	return storeFor(name).create(ctx, name, c)
}

// ListImages lists the images (first parts) directly in a folder, a
// folder of a share or a prefix of a bucket, sorted by name.
func ListImages(dir string) []string {
	return storeFor(dir).list(context.Background(), dir)
}

// ImageHeader reads what an image says about itself without its password
// (UUID, parent, creation, parts and size), from any store.
func ImageHeader(ctx context.Context, name string) (images.Info, error) {
	im, err := openImage(ctx, name, images.OpenOptions{})
	if err != nil {
		return images.Info{}, err
	}
	defer im.Close()
	return im.Info(), nil
}

// RemoveImage deletes every part of the image at name, after checking it
// is still the image uuid; later parts first, so an interrupted deletion
// leaves a first part that says it is incomplete, never parts without it.
func RemoveImage(ctx context.Context, name, uuid string) error {
	i, err := ImageHeader(ctx, name)
	if err != nil {
		return err
	}
	if i.UUID != uuid {
		return fmt.Errorf("it now holds another image (%s, not %s); left alone", i.UUID, uuid)
	}
	for j := len(i.Parts) - 1; j >= 0; j-- {
		p := i.Parts[j]
		if err := storeFor(p).remove(ctx, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// CheckFolder checks that images can be written under dir: a local
// folder or a folder of a share that exists, or a prefix of a bucket that
// exists and whose keys are accepted.
func CheckFolder(ctx context.Context, dir string) error {
	return storeFor(dir).checkFolder(ctx, dir)
}

// JoinImage names file in dir, a folder or a URL's folder.
func JoinImage(dir, file string) string {
	if IsURL(dir) {
		return strings.TrimSuffix(dir, "/") + "/" + file
	}
	return filepath.Join(dir, file)
}

// imageDir is the folder that holds name: where its chain is looked for.
func imageDir(name string) string {
	if IsURL(name) {
		return name[:strings.LastIndex(name, "/")]
	}
	return filepath.Dir(name)
}

// ImageExists reports whether an image (or an unfinished one) holds the
// name.
func ImageExists(ctx context.Context, name string) bool {
	return storeFor(name).exists(ctx, name)
}

// OpenObject opens an image file in a store (s3://, smb://, http://) for
// ranged reads, safe for concurrent use.
func OpenObject(ctx context.Context, name string) (io.ReaderAt, int64, error) {
	r, size, _, err := storeFor(name).open(ctx, name)
	return r, size, err
}

// localStore is this machine's folders. The images package writes the
// parts itself (as .partial files, fsynced, re-opened and renamed: see
// images.Create), so an imageOutput here only names the file.
type localStore struct{}

type localOutput struct{ name string }

func (localStore) create(_ context.Context, name string, c createCheck) (imageOutput, []string, error) {
	if err := checkOutput(BackupOptions{Output: name, Overwrite: c.overwrite, SplitSize: c.split, Source: c.source}); err != nil {
		return nil, nil, err
	}
	return localOutput{name}, nil, nil
}

func (o localOutput) writer(wo images.WriterOptions) (*images.Writer, error) {
	return images.Create(o.name, wo)
}

// finish has nothing left to do: the writer's Commit re-opened the parts
// before renaming them into place.
func (localOutput) finish(context.Context, *images.Writer) error { return nil }
func (localOutput) abort()                                       {}

func (localStore) open(_ context.Context, name string) (io.ReaderAt, int64, io.Closer, error) {
	return images.OpenFile(name)
}

func (localStore) list(_ context.Context, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && IsImageName(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func (localStore) remove(_ context.Context, name string) error { return os.Remove(name) }

func (localStore) exists(_ context.Context, name string) bool {
	for _, p := range []string{name, name + ".partial"} {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
	}
	return false
}

func (localStore) checkFolder(_ context.Context, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	return nil
}

// remoteOutput is an image uploaded to a share or a bucket as one stream.
type remoteOutput struct {
	name string
	up   remoteUpload
}

// remoteUpload is the stream of an image being uploaded.
type remoteUpload interface {
	io.Writer
	Commit() error
	Abort()
}

func (o remoteOutput) writer(wo images.WriterOptions) (*images.Writer, error) {
	return images.NewStreamWriter(o.up, o.name, wo)
}

func (o remoteOutput) abort() { o.up.Abort() }

// finish completes the upload and proves it: the image, read back from
// the store, opens as the image w just wrote (header, trailer, index and
// metadata checksums; decrypted with w's key when it is encrypted). One
// that does not is deleted.
func (o remoteOutput) finish(ctx context.Context, w *images.Writer) error {
	if err := o.up.Commit(); err != nil {
		return fmt.Errorf("upload %s: %w; nothing was stored under that name", o.name, err)
	}
	im, err := openImage(ctx, o.name, w.ReopenOptions())
	if err == nil {
		if im.UUID() != w.UUID() {
			err = fmt.Errorf("it holds image %s, not %s", im.UUID(), w.UUID())
		}
		im.Close()
	}
	if err != nil {
		storeFor(o.name).remove(ctx, o.name)
		return fmt.Errorf("the uploaded %s does not read back (%w); it was deleted", o.name, err)
	}
	return nil
}

// remoteCreate refuses what no remote store can hold, before anything is
// written.
func remoteCreate(name string, c createCheck) error {
	if c.split > 0 {
		return refuse(name, "an image in a store needs no split (one object or file holds it)", "drop --split")
	}
	return nil
}

// httpStore is a web server that serves images with range requests (the
// PXE server, any server that honours Range): read only.
type httpStore struct{}

func (httpStore) create(_ context.Context, name string, _ createCheck) (imageOutput, []string, error) {
	return nil, nil, refuse(name, "images cannot be written over http(s)", "write to a file, an smb:// share or an s3:// bucket")
}

func (httpStore) open(ctx context.Context, name string) (io.ReaderAt, int64, io.Closer, error) {
	return openHTTP(ctx, name)
}

// list finds nothing: a web server has no listing to trust.
func (httpStore) list(context.Context, string) []string { return nil }

func (httpStore) remove(_ context.Context, name string) error {
	return fmt.Errorf("%s: images on a web server cannot be deleted from here", name)
}

func (httpStore) exists(ctx context.Context, name string) bool {
	_, _, _, err := openHTTP(ctx, name)
	return err == nil
}

func (httpStore) checkFolder(_ context.Context, dir string) error {
	return refuse(dir, "images cannot be written over http(s)", "write to a folder, an smb:// share or an s3:// bucket")
}
