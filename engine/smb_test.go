package engine

import (
	"bufio"
	"errors"
	"testing"
)

// brokenConn writes like go-smb2's File once its connection is gone.
type brokenConn struct{}

func (brokenConn) Write([]byte) (int, error) { return -1, errors.New("connection reset") }

// TestSMBWriterAfterServerLoss: a lost server makes the upload fail with
// its error, write after write, instead of panicking inside bufio.
func TestSMBWriterAfterServerLoss(t *testing.T) {
	w := bufio.NewWriterSize(smbWriter{brokenConn{}}, 16)
	for i := range 4 {
		if _, err := w.Write(make([]byte, 40)); err == nil {
			t.Fatalf("write %d succeeded on a lost connection", i)
		}
	}
	if err := w.Flush(); err == nil {
		t.Fatal("flush succeeded on a lost connection")
	}
}
