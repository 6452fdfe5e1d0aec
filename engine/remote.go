package engine

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

var httpClient = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost: 8,
	IdleConnTimeout:     30 * time.Second,
}}

// httpFile is an io.ReaderAt over one URL; its requests end when ctx is
// cancelled.
type httpFile struct {
	ctx  context.Context
	url  string
	size int64
}

func openHTTP(ctx context.Context, url string) (io.ReaderAt, int64, io.Closer, error) {
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodHead, url, nil)
	if err != nil {
		return nil, 0, nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w; check the address and that the server is running", url, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, 0, nil, fmt.Errorf("%s: the server has no such file: %w", url, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, 0, nil, fmt.Errorf("%s: the server answered %s", url, resp.Status)
	case resp.ContentLength < 0:
		return nil, 0, nil, fmt.Errorf("%s: the server does not say how long the file is; serve it with a Content-Length", url)
	case resp.Header.Get("Accept-Ranges") != "bytes":
		return nil, 0, nil, fmt.Errorf("%s: the server does not take range requests (Accept-Ranges: bytes); serve images with lifeboat pxe serve or a web server that does", url)
	}
	f := &httpFile{ctx: ctx, url: url, size: resp.ContentLength}
	return f, f.size, io.NopCloser(nil), nil
}

// ReadAt fetches one range, retrying a few times: a long restore should
// not fail on one dropped connection.
func (f *httpFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), f.size-off)
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-f.ctx.Done():
				return 0, fmt.Errorf("%s: %w", f.url, f.ctx.Err())
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		var n int
		n, err = f.get(p[:want], off)
		if f.ctx.Err() != nil {
			return 0, err // cancelled: no retry
		}
		if err == nil {
			if want < int64(len(p)) {
				return n, io.EOF
			}
			return n, nil
		}
	}
	return 0, err
}

func (f *httpFile) get(p []byte, off int64) (int, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+int64(len(p))-1, 10))
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("%s: range request answered %s", f.url, resp.Status)
	}
	n, err := io.ReadFull(resp.Body, p)
	if err != nil {
		return n, fmt.Errorf("%s: %w", f.url, err)
	}
	return n, nil
}

// windowReader reads a remote file (an S3 object, a file on an SMB share)
// in whole windows of 4 MiB, keeping the last few: an image's chunks are
// read mostly in order, and one request per chunk would spend the time in
// round trips. Reading a window starts fetching the next one (read-ahead,
// one window deep), so the network works while the reader decodes.
// Concurrent readers of one window wait for one fetch. A window's buffer
// is reused once it is dropped and no reader is copying from it, so a
// long restore does not leave 4 MiB of garbage per window read.
type windowReader struct {
	// get fills buf (len(buf) bytes from off) and returns it.
	get  func(buf []byte, off int64) ([]byte, error)
	size int64
	mu   sync.Mutex
	wins map[int64]*window
	lru  []int64
	free [][]byte // buffers of dropped windows
}

type window struct {
	ready chan struct{}
	data  []byte
	err   error
	// next says the window after this one was asked for already.
	next bool
	// refs counts the fetch and the readers using data; dropped says
	// the window left the map. The buffer is freed when both allow.
	refs    int
	dropped bool
}

const (
	windowSize = 4 << 20
	windows    = 8 // 32 MiB at most per file
)

func newWindowReader(get func(buf []byte, off int64) ([]byte, error), size int64) *windowReader {
	return &windowReader{get: get, size: size, wins: map[int64]*window{}}
}

func (o *windowReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < o.size {
		w, err := o.window(off / windowSize)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], w.data[off%windowSize:])
		o.release(w)
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// window returns window i, fetched, with a reference the caller releases;
// it starts fetching window i+1.
func (o *windowReader) window(i int64) (*window, error) {
	w, fetch := o.claim(i)
	o.mu.Lock()
	ahead := !w.next && (i+1)*windowSize < o.size
	w.next = true
	o.mu.Unlock()
	if ahead {
		if nw, f := o.claim(i + 1); f {
			go func() {
				o.fill(i+1, nw)
				o.release(nw)
			}()
		} else {
			o.release(nw)
		}
	}
	if fetch {
		o.fill(i, w)
	}
	<-w.ready
	if w.err != nil {
		err := w.err
		o.release(w)
		return nil, err
	}
	return w, nil
}

// claim returns window i with a reference taken, and whether the caller
// must fetch it.
func (o *windowReader) claim(i int64) (*window, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.wins[i]; ok {
		if j := slices.Index(o.lru, i); j >= 0 {
			o.lru = append(slices.Delete(o.lru, j, j+1), i)
		}
		w.refs++
		return w, false
	}
	w := &window{ready: make(chan struct{}), refs: 1}
	o.wins[i] = w
	o.lru = append(o.lru, i)
	for len(o.lru) > windows {
		old := o.wins[o.lru[0]]
		delete(o.wins, o.lru[0])
		o.lru = o.lru[1:]
		old.dropped = true
		o.freeLocked(old)
	}
	return w, true
}

// release drops a reference taken by claim.
func (o *windowReader) release(w *window) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w.refs--
	o.freeLocked(w)
}

// freeLocked keeps the buffer of a dropped window nobody uses any more.
func (o *windowReader) freeLocked(w *window) {
	if w.dropped && w.refs == 0 && w.data != nil {
		if cap(w.data) == windowSize && len(o.free) < 2 {
			o.free = append(o.free, w.data[:0])
		}
		w.data = nil
	}
}

func (o *windowReader) fill(i int64, w *window) {
	start := i * windowSize
	n := min(windowSize, o.size-start)
	o.mu.Lock()
	var buf []byte
	if k := len(o.free); k > 0 {
		buf, o.free = o.free[k-1], o.free[:k-1]
	} else {
		buf = make([]byte, 0, windowSize)
	}
	o.mu.Unlock()
	data, err := o.get(buf[:n], start)
	o.mu.Lock()
	w.data, w.err = data, err
	if err != nil {
		if o.wins[i] == w {
			delete(o.wins, i)
			if j := slices.Index(o.lru, i); j >= 0 {
				o.lru = slices.Delete(o.lru, j, j+1)
			}
		}
		w.data = nil
	}
	o.mu.Unlock()
	close(w.ready)
}
