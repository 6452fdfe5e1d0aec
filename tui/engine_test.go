package tui

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// A real restore through the model and the real engine: an image made by
// engine.Backup from random bytes goes through the wizard into a new file,
// after a wrong name first wrote nothing.
func TestRealRestore(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "source.img")
	data := make([]byte, 3<<20)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "part.lbi")
	if _, err := engine.Backup(context.Background(), engine.BackupOptions{Source: src, Kind: images.KindPartition, Output: img, Compression: images.LevelFast}); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target.img")
	h := newHarness(t, Options{Images: func() []string { return []string{img} }})

	h.keys("<enter><enter>")
	h.waitFor("Backup points in " + img)
	h.keys("<enter><end><enter>" + target + "<enter>")
	h.waitFor("Write the partition as the image holds it")
	h.keys("<enter>") // as the image holds it
	h.waitFor("Type target.img and press Enter")
	h.keys("target<enter>")
	h.waitFor("Pick the target again")
	h.shows("nothing was written to")
	if _, err := os.Stat(target); err == nil {
		t.Fatal("a declined restore created the target")
	}

	// Back on the target list, the typed target chosen again.
	h.keys("<enter>" + target + "<enter>")
	h.waitFor("Write the partition as the image holds it")
	h.keys("<enter>")
	h.waitFor("Type target.img and press Enter")
	h.keys("target.img<enter>")
	h.waitFor("Restore finished")
	h.shows("Verified: everything written was read back")
	got, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the restored file differs from the source")
	}
}

// The same model inside a real bubbletea program: keys go in through the
// program's input as a terminal sends them, the screen comes out on its
// output, and the program ends with the chosen action.
func TestProgramNavigation(t *testing.T) {
	o := fakeOptions(newFake())
	o.Rescue = true
	inR, inW := io.Pipe()
	out := &syncBuffer{}
	m := New(context.Background(), o)
	p := tea.NewProgram(m, tea.WithInput(inR), tea.WithOutput(out))
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()
	waitOut := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("the program never showed %q; output:\n%q", s, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOut("Main menu")
	io.WriteString(inW, "\r")
	waitOut("Pick the image to restore")
	io.WriteString(inW, "\x1b")
	waitOut("> Restore")
	for range 9 {
		io.WriteString(inW, "\x1b[B")
		time.Sleep(20 * time.Millisecond)
	}
	io.WriteString(inW, "\r")
	waitOut("Reboot or power off")
	io.WriteString(inW, "\r")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the program did not end")
	}
	if a := m.Action(); a != ActionReboot {
		t.Errorf("action %v, want reboot", a)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
