package tasks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// taskLock keeps two runs of one task from overlapping: an exclusive lock
// on a file in the state folder, held until the run ends (the system drops
// it when the process dies, so a crash never leaves a task locked).
type taskLock struct{ f *os.File }

// errLocked is what tryLock returns when another process holds the lock.
var errLocked = errors.New("locked")

func lockTask(state, task string, now time.Time) (*taskLock, error) {
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, fmt.Errorf("the task state folder: %w", err)
	}
	p := filepath.Join(state, fileName(task)+".lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock task %q: %w", task, err)
	}
	if err := tryLock(f); err != nil {
		holder, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, errLocked) {
			pid, since, _ := strings.Cut(strings.TrimSpace(string(holder)), " ")
			msg := fmt.Sprintf("task %q is already running", task)
			if pid != "" {
				msg += fmt.Sprintf(" (process %s, since %s)", pid, since)
			}
			return nil, &kindError{msg + "; this run was not started, so two runs never overlap", engine.ErrRefused}
		}
		return nil, fmt.Errorf("lock task %q: %w", task, err)
	}
	// Who holds it, for the message a second run gives. Written through
	// the locked handle: on Windows another handle may not write a
	// locked range.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+now.Format(time.RFC3339)+"\n"), 0)
	return &taskLock{f: f}, nil
}

func (l *taskLock) release() {
	l.f.Truncate(0)
	unlock(l.f)
	l.f.Close()
}
