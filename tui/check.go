package tui

import (
	"context"
	"errors"
	"fmt"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// checkWizard reads every byte of an image and verifies it: the image
// (and its password), then the shared progress and result.
type checkWizard struct {
	u   *ui
	s   steps
	img imagePicker
}

func newCheck(u *ui) (*checkWizard, tea.Cmd) {
	w := &checkWizard{u: u}
	return w, w.img.begin(u, &w.s)
}

func (w *checkWizard) flow() flow  { return flowCheck }
func (w *checkWizard) nav() *steps { return &w.s }

func (w *checkWizard) key(k tea.KeyMsg) tea.Cmd {
	cmd, _ := w.img.key(w.u, &w.s, k)
	return cmd
}

func (w *checkWizard) msg(msg tea.Msg) tea.Cmd {
	if w.img.take(w.u, &w.s, msg) {
		return w.start()
	}
	return nil
}

func (w *checkWizard) start() tea.Cmd {
	b, image := w.u.o.Backend, w.img.path
	o := engine.CheckOptions{Image: image, Password: w.img.passwordFunc()}
	return w.u.launch(job{
		flow: flowCheck, heading: "Check " + image,
		readOnly: "The image was only read; it is unchanged.",
		stopAsk:  "Stop the check?",
		run: func(ctx context.Context, h hooks) ([]string, error) {
			p := h.progress
			o.Progress = p
			res, err := b.Check(ctx, o)
			if err != nil {
				return nil, err
			}
			return []string{
				fmt.Sprintf("%s is intact: every one of its %s of stored data was read and matches its checksums.", image, engine.HumanBytes(res.StoredBytes)),
				fmt.Sprintf("It restores %s of disk data. Checked in %s.", engine.HumanBytes(res.DiskBytes), clock(res.Elapsed)),
			}, nil
		},
	})
}

// recover: a wrong password goes back to the image list.
func (w *checkWizard) recover(err error) bool {
	if !errors.Is(err, images.ErrWrongPassword) && !errors.Is(err, images.ErrPasswordNeeded) {
		return false
	}
	if !w.s.backTo(stImage) {
		return false
	}
	w.u.err = err.Error() + ". Choose the image again and type its password."
	return true
}

func (w *checkWizard) body(rows int) []string {
	out, _ := w.img.body(w.u, &w.s, "check", rows)
	return out
}
