package engine

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHTTPReadCancelled: cancelling the context ends a range read that
// the server holds, and stops the retries; the error is the cancel.
// stalledServer answers HEAD with a 1 MiB file and holds every range
// read until the request ends: a server that stopped sending.
func stalledServer(t *testing.T) string {
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Accept-Ranges", "bytes")
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "1048576")
			return
		}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hold); srv.Close() })
	return srv.URL
}

func TestHTTPReadCancelled(t *testing.T) {
	url := stalledServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	r, size, _, err := openHTTP(ctx, url+"/x.lbi")
	if err != nil || size != 1<<20 {
		t.Fatalf("open: %v, size %d", err, size)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = r.ReadAt(make([]byte, 4096), 0)
	if !errors.Is(err, context.Canceled) || ExitCode(err) != ExitCancelled {
		t.Errorf("err = %v, want the cancel", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the read took %v after the cancel", d)
	}
}

// TestInfoCancelled: Info stops when its context is cancelled, while the
// server holds the image's header back, with the cancel as its error.
func TestInfoCancelled(t *testing.T) {
	url := stalledServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := Info(ctx, url+"/x.lbi", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the cancel", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Info took %v after the cancel", d)
	}
}
