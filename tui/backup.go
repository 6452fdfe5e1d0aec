package tui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/images"
)

// backupWizard saves a disk or partition into an image: source, folder,
// backup type (backup_chain.go, when the folder holds backups of the same
// source), file name, compression, password (asked twice), split size,
// summary; then the shared progress and result.
type backupWizard struct {
	u       *ui
	s       steps
	source  string
	srcPart bool // the source is a partition
	dest    string
	name    string
	level   images.Level
	bpw     []byte
	cipher  images.Cipher // with a password; CipherNone leaves the engine's default
	split   int64
	chain   backupChain
}

func newBackup(u *ui) *backupWizard {
	w := &backupWizard{u: u, level: images.LevelNormal}
	w.s.push(u, stSource)
	w.s.setList(stSource, deviceList(u, deviceQuery{disks: true, parts: true}))
	return w
}

func (w *backupWizard) flow() flow  { return flowBackup }
func (w *backupWizard) nav() *steps { return &w.s }

func (w *backupWizard) msg(msg tea.Msg) tea.Cmd {
	if f, ok := msg.(folderMsg); ok {
		w.gotFolder(f)
	}
	return nil
}

func (w *backupWizard) key(k tea.KeyMsg) tea.Cmd {
	u, s := w.u, &w.s
	if textSteps[s.cur] {
		v, enter := textKey(&s.in, k)
		if !enter {
			return nil
		}
		return w.submit(v)
	}
	it, ok := listKey(s, k)
	if !ok {
		return nil
	}
	switch s.cur {
	case stSource:
		w.source, w.srcPart = it.key, u.isPartition(it.key)
		s.push(u, stBackupDest)
		var items []item
		src := diskOf(u.disks, w.source)
		for _, d := range u.o.Destinations() {
			l := d
			if src != "" && imageDisk(u.disks, d) == src {
				// Allowed, but a disk that fails takes its backup with it.
				l += "  ! on the disk being backed up"
			}
			items = append(items, item{label: l, key: d})
		}
		items = append(items, item{label: "Type a folder...", key: "type"})
		s.setList(stBackupDest, newList(items...))
	case stBackupDest:
		if it.key == "type" {
			s.textStep(u, stBackupFolder, "", false)
			return nil
		}
		w.dest = it.key
		return w.scanFolder()
	case stBackupType:
		w.chain.kind = images.PointKind(it.key)
		w.askName()
	case stCompression:
		w.level, _ = images.ParseLevel(it.key)
		s.textStep(u, stBackupPw1, "", true)
	case stCipher:
		w.cipher, _ = images.ParseCipher(it.key)
		w.splitStep()
	case stSplit:
		if it.key == "type" {
			s.textStep(u, stSplitSize, "", false)
			return nil
		}
		fmt.Sscan(it.key, &w.split)
		w.summaryStep()
	case stBackupSummary:
		return w.start()
	}
	return nil
}

// submit acts on Enter on a text step.
func (w *backupWizard) submit(raw string) tea.Cmd {
	u, s := w.u, &w.s
	v := strings.TrimSpace(raw)
	switch s.cur {
	case stBackupFolder:
		if v == "" {
			u.err = "Type the folder the image goes into."
			return nil
		}
		w.dest = v
		return w.scanFolder()
	case stBackupName:
		if v == "" || strings.ContainsAny(v, `/\`) {
			u.err = "Type a file name (without folders), e.g. pc1.lbi."
			return nil
		}
		if !strings.HasSuffix(v, ".lbi") {
			v += ".lbi"
		}
		w.name = v
		if w.chain.chained() {
			// The new point takes the chain's compression and encryption.
			if w.chain.base.Cipher != images.CipherNone {
				s.textStep(u, stChainPw, "", true)
				return nil
			}
			w.splitStep()
			return nil
		}
		s.push(u, stCompression)
		s.setList(stCompression, newList(
			item{label: "normal  good size, fast enough (recommended)", key: "normal"},
			item{label: "fast    less CPU, larger image", key: "fast"},
			item{label: "high    smallest image, slowest", key: "high"},
			item{label: "none    store as is", key: "none"},
		))
	case stBackupPw1:
		w.bpw = []byte(raw)
		if len(w.bpw) == 0 {
			w.splitStep()
			return nil
		}
		s.textStep(u, stBackupPw2, "", true)
	case stBackupPw2:
		if raw != string(w.bpw) {
			s.back(u)
			s.in = input{mask: true}
			u.err = "The two passwords differ; type it again."
			return nil
		}
		s.push(u, stCipher)
		s.setList(stCipher, newList(
			item{label: cipherNames[images.CipherAES256GCM] + "         (recommended; fastest on CPUs with AES instructions)", key: images.CipherAES256GCM.String()},
			item{label: cipherNames[images.CipherXChaCha20Poly1305] + "  (faster on small CPUs without them)", key: images.CipherXChaCha20Poly1305.String()},
		))
	case stSplitSize:
		n, err := engine.ParseSize(v)
		if err != nil || n < 1<<20 || n > 1<<62 {
			u.err = "Type a part size of at least 1 MiB, e.g. 1GiB or 700MiB."
			return nil
		}
		w.split = n
		w.summaryStep()
	case stChainPw:
		w.chain.password = []byte(raw)
		if len(w.chain.password) == 0 {
			u.err = "Type the password of the backups in " + w.dest + "."
			return nil
		}
		w.splitStep()
	}
	return nil
}

// cipherNames are the ciphers as their authors write them.
var cipherNames = map[images.Cipher]string{
	images.CipherAES256GCM:         "AES-256-GCM",
	images.CipherXChaCha20Poly1305: "XChaCha20-Poly1305",
}

func (w *backupWizard) splitStep() {
	w.s.push(w.u, stSplit)
	w.s.setList(stSplit, newList(
		item{label: "Do not split", key: "0"},
		item{label: "4 GiB parts (for FAT32 sticks)", key: fmt.Sprint(int64(4<<30 - 1<<20))},
		item{label: "2 GiB parts", key: fmt.Sprint(int64(2 << 30))},
		item{label: "650 MiB parts (for CDs)", key: fmt.Sprint(int64(650 << 20))},
		item{label: "Another size...", key: "type"},
	))
}

func (w *backupWizard) summaryStep() {
	w.s.push(w.u, stBackupSummary)
	w.s.setList(stBackupSummary, newList(item{label: "Start the backup", key: "start"}))
}

func (w *backupWizard) askName() {
	date := ""
	if w.u.o.Now != nil {
		date = "-" + w.u.o.Now()
	}
	w.s.textStep(w.u, stBackupName, filepath.Base(w.source)+date+".lbi", false)
}

func (w *backupWizard) kind() images.StreamKind {
	if w.srcPart {
		return images.KindPartition
	}
	return images.KindDisk
}

func (w *backupWizard) start() tea.Cmd {
	b := w.u.o.Backend
	out := filepath.Join(w.dest, w.name)
	o := engine.BackupOptions{Source: w.source, Kind: w.kind(), Output: out, Compression: w.level, Password: w.bpw, Cipher: w.cipher, SplitSize: w.split, ToolVersion: w.u.o.Version}
	w.chain.apply(&o)
	source := w.source
	return w.u.launch(job{
		flow: flowBackup, heading: fmt.Sprintf("Back up %s to %s", w.source, out),
		prepare: w.dest, sources: []string{w.source},
		readOnly: "No image was left behind: an unfinished image is removed. The source was only read.",
		stopAsk:  "Stop the backup? The unfinished image is removed.",
		run: func(ctx context.Context, h hooks) ([]string, error) {
			p := h.progress
			o.Progress = p
			res, err := b.Backup(ctx, o)
			if err != nil {
				return nil, err
			}
			lines := []string{
				fmt.Sprintf("Backed up %s (%s) into %s.", source, engine.HumanBytes(res.SourceSize), res.Image),
				fmt.Sprintf("Stored %s in %s.", engine.HumanBytes(res.Stored), clock(res.Elapsed)),
			}
			if res.Unused > 0 {
				lines = append(lines, fmt.Sprintf("%s that no filesystem uses was not stored.", engine.HumanBytes(res.Unused)))
			}
			for _, f := range res.Fallbacks {
				lines = append(lines, "Copied sector by sector: "+f)
			}
			for _, w := range res.Warnings {
				lines = append(lines, "Warning: "+w)
			}
			return append(lines, "", "Next: check the image (Check image on the main menu) before relying on it."), nil
		},
	})
}

// recover: a refused output (a file of that name exists, the folder is on
// the source disk) goes back to the file name, a refused source to the
// source list; the other choices are kept.
func (w *backupWizard) recover(err error) bool {
	var ref *engine.RefusedError
	if !errors.As(err, &ref) {
		return false
	}
	to, what := stBackupName, "file name or folder"
	if ref.Object == w.source {
		to, what = stSource, "source"
	}
	if !w.s.backTo(to) {
		return false
	}
	if to == stBackupName {
		w.s.in = input{}
		w.s.in.set(w.name)
	}
	w.u.err = refusalText(err) + " Nothing was written; change the " + what + ", the other choices are kept."
	return true
}

func (w *backupWizard) body(rows int) []string {
	u, s := w.u, &w.s
	switch s.cur {
	case stSource:
		return u.listBody(s.list(), "Pick what to back up: a whole disk, or one partition.", rows)
	case stBackupDest:
		after := "Put the image on another disk than the one you back up."
		if len(s.list().items) == 1 {
			after = "No writable filesystem was found on another disk. Attach a USB disk, or type a folder."
		}
		return u.listBody(s.list(), "Pick the folder the image goes into:", rows, after)
	case stBackupFolder:
		return u.inputBody(&s.in, "Type the folder the image goes into:")
	case stBackupType:
		return w.chain.typeBody(u, s, w.dest, w.source, rows)
	case stChainPw:
		return u.inputBody(&s.in, "The backups in "+w.dest+" are encrypted; the new point is encrypted the same way. Type their password, then press Enter:")
	case stBackupName:
		return u.inputBody(&s.in, "File name of the image in "+w.dest+":", "Split images get parts named NAME.002.lbi and so on beside it.")
	case stCompression:
		return u.listBody(s.list(), "Compression:", rows)
	case stBackupPw1:
		return u.inputBody(&s.in, "Password to encrypt the image, or just Enter for no encryption:",
			"Without the password nobody can restore the image, you neither: keep it safe.")
	case stBackupPw2:
		return u.inputBody(&s.in, "Type the password again:")
	case stCipher:
		return u.listBody(s.list(), "Cipher for the encrypted image:", rows, "Both are strong; the password is what protects the image.")
	case stSplit:
		return u.listBody(s.list(), "Split the image into parts?", rows, "FAT32 sticks cannot hold files of 4 GiB or more.")
	case stSplitSize:
		return u.inputBody(&s.in, "Size of each part (MiB, GiB), e.g. 1GiB:")
	case stBackupSummary:
		return w.summary(u.w)
	}
	return nil
}

func (w *backupWizard) summary(width int) []string {
	enc := "not encrypted"
	if len(w.bpw) > 0 {
		c := w.cipher
		if c == images.CipherNone {
			c = images.CipherAES256GCM
		}
		enc = "encrypted (" + cipherNames[c] + ")"
	}
	split := "not split"
	if w.split > 0 {
		split = "split into parts of " + engine.HumanBytes(w.split)
	}
	what := "disk"
	if w.srcPart {
		what = "partition"
	}
	out := []string{
		cut(fmt.Sprintf("  Back up  %s (%s)", w.source, what), width),
		cut(fmt.Sprintf("  Into     %s", filepath.Join(w.dest, w.name)), width),
	}
	opts := fmt.Sprintf("compression %s, %s, %s", w.level, enc, split)
	if l := w.chain.summaryLine(); l != "" {
		out = append(out, cut(l, width))
	}
	if w.chain.chained() {
		opts = "compression and encryption as the chain, " + split
	}
	n := len(out)
	out = append(out, indent(wrap(opts, width-11), "           ")...)
	out[n] = "  Options" + out[n][9:]
	out = append(out, "")
	out = append(out, wrap("The source is only read. The image appears under its name only when it is complete.", width)...)
	return append(append(out, ""), w.s.lists[stBackupSummary].render(w.u.st, width, 1)...)
}
