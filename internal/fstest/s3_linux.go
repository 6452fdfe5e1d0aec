package fstest

import (
	"os"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/storeserver"
)

// S3 is a running S3 server for a test (storeserver.StartS3): Versity's
// gateway over a folder, one folder per bucket.
type S3 struct {
	*storeserver.S3
	t testing.TB
}

// StartS3 runs the server over root, stopped when the test ends.
func StartS3(t testing.TB, root string) *S3 {
	t.Helper()
	s, err := storeserver.StartS3(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return &S3{S3: s, t: t}
}

// Start restarts the server (after Kill).
func (s *S3) Start() {
	if err := s.S3.Start(); err != nil {
		s.t.Fatal(err)
	}
}

// SMB is a running Samba server for a test (storeserver.StartSMB), in a
// network namespace of its own, at Addr.
type SMB struct {
	*storeserver.SMB
	t testing.TB
}

// StartSMB starts smbd with its configuration and state in dir, in a new
// network namespace; smbd is stopped and the namespace removed when the
// test ends. Skips the test when not root.
func StartSMB(t testing.TB, dir string) *SMB {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("Samba in a network namespace of its own needs root")
	}
	s, err := storeserver.StartSMB(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return &SMB{SMB: s, t: t}
}

// Start restarts smbd (after Kill).
func (s *SMB) Start() {
	if err := s.SMB.Start(); err != nil {
		s.t.Fatal(err)
	}
}
