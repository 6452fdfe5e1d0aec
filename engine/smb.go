package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hirochachacha/go-smb2"
)

// Images on SMB shares (a NAS, a Windows or Samba server), named
// smb://HOST[:PORT]/SHARE/PATH, reached with a pure-Go SMB2/3 client
// (go-smb2): no kernel module and no mount, so it works where mount.cifs
// cannot (this machine's kernel has no cifs) and in the rescue
// environment. The user name and password come from a credentials file in
// mount.cifs's format (username=, password=, domain=), named by
// --credentials-file or LIFEBOAT_SMB_CREDENTIALS; without one the share
// is opened as a guest.
//
// A new image is written as PATH.partial and renamed when complete (and
// read back), so the share holds it complete or not at all; a killed
// backup leaves PATH.partial, which the next backup to that name removes.

// IsSMB reports whether an image is named by an smb:// URL.
func IsSMB(s string) bool { return strings.HasPrefix(s, "smb://") }

// SMBCredentialsEnv names the credentials file of SMB shares.
const SMBCredentialsEnv = "LIFEBOAT_SMB_CREDENTIALS"

type smbLoc struct{ host, share, path string }

func parseSMB(s string) (smbLoc, error) {
	host, rest, _ := strings.Cut(strings.TrimPrefix(s, "smb://"), "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:] // a user in the URL: the credentials file decides
	}
	share, p, _ := strings.Cut(rest, "/")
	if host == "" || share == "" {
		return smbLoc{}, fmt.Errorf("%s: write smb://SERVER/SHARE/PATH", s)
	}
	if !strings.Contains(host, ":") || strings.HasSuffix(host, "]") {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "445")
	}
	return smbLoc{host: host, share: share, path: strings.Trim(p, "/")}, nil
}

type smbCreds struct{ user, password, domain string }

func readSMBCredentials() (smbCreds, error) {
	var c smbCreds
	p := os.Getenv(SMBCredentialsEnv)
	if p == "" {
		return c, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return c, fmt.Errorf("SMB credentials file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "username", "user":
			c.user = strings.TrimSpace(v)
			if d, u, ok := strings.Cut(c.user, `\`); ok {
				c.domain, c.user = d, u
			}
		case "password", "pass":
			c.password = strings.TrimRight(v, "\r")
		case "domain", "workgroup":
			c.domain = strings.TrimSpace(v)
		}
	}
	if c.user == "" {
		return c, fmt.Errorf("SMB credentials file %s has no username= line", p)
	}
	return c, sc.Err()
}

type smbShare struct {
	conn  net.Conn
	sess  *smb2.Session
	share *smb2.Share
}

var (
	smbMu     sync.Mutex
	smbShares = map[string]*smbShare{}
)

// smbMount returns the share of loc, connected once per process.
func smbMount(ctx context.Context, name string, loc smbLoc) (*smb2.Share, error) {
	creds, err := readSMBCredentials()
	if err != nil {
		return nil, err
	}
	key := loc.host + "/" + loc.share + "/" + creds.user
	smbMu.Lock()
	defer smbMu.Unlock()
	if s, ok := smbShares[key]; ok {
		return s.share, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", loc.host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; check the server's name and that it shares files (port 445)", name, err)
	}
	user := creds.user
	if user == "" {
		user = "guest"
	}
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: creds.password, Domain: creds.domain}}
	sess, err := d.DialContext(dctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: logon as %s refused (%v): %w; check the user name and password in the credentials file (--credentials-file)", name, user, err, fs.ErrPermission)
	}
	sh, err := sess.Mount(loc.share)
	if err != nil {
		sess.Logoff()
		conn.Close()
		var re *smb2.ResponseError
		if errors.As(err, &re) {
			return nil, &NotFoundError{Path: name, Msg: fmt.Sprintf("%s: the server has no share %s that %s may use (%v)", name, loc.share, user, err)}
		}
		return nil, fmt.Errorf("%s: share %s: %w", name, loc.share, err)
	}
	smbShares[key] = &smbShare{conn: conn, sess: sess, share: sh}
	smbGCOnce.Do(func() {
		// go-smb2 allocates a fresh buffer for every response (up to 1 MiB
		// each), so reading or writing a share makes garbage at the
		// network's speed, and with the default GOGC (100) the heap grew
		// to twice the live data: a restore from a share peaked at
		// 166–176 MiB RSS, past the 150 MiB of issue #19. Collecting at
		// 50 % growth held it at 136 MiB (94 for a backup; make bench's
		// stores part), its time within that part's noise (4.68 s against
		// 4.51–4.90). A lower GOGC the user set stays.
		if old := debug.SetGCPercent(smbGCPercent); old < smbGCPercent { // also -1: GOGC=off
			debug.SetGCPercent(old)
		}
	})
	return sh, nil
}

const smbGCPercent = 50

var smbGCOnce sync.Once

func smbOpen(ctx context.Context, name string) (*smb2.Share, smbLoc, error) {
	loc, err := parseSMB(name)
	if err != nil {
		return nil, loc, err
	}
	sh, err := smbMount(ctx, name, loc)
	return sh, loc, err
}

// smbStore is the shares of SMB servers.
type smbStore struct{}

func (smbStore) open(ctx context.Context, name string) (io.ReaderAt, int64, io.Closer, error) {
	sh, loc, err := smbOpen(ctx, name)
	if err != nil {
		return nil, 0, nil, err
	}
	f, err := sh.Open(loc.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, nil, &NotFoundError{Path: name, Msg: fmt.Sprintf("%s: no such file on the share", name)}
		}
		return nil, 0, nil, fmt.Errorf("%s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s: %w", name, err)
	}
	get := func(b []byte, off int64) ([]byte, error) {
		n := int64(len(b))
		if _, err := f.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && off+n == st.Size()) {
			return nil, fmt.Errorf("read %s at %d: %w", name, off, err)
		}
		return b, nil
	}
	return newWindowReader(get, st.Size()), st.Size(), f, nil
}

// smbUpload writes PATH.partial through a buffer and renames it on commit.
type smbUpload struct {
	name      string
	share     *smb2.Share
	tmp, dest string
	f         *smb2.File
	w         *bufio.Writer
	overwrite bool
	done      bool
}

func (smbStore) create(ctx context.Context, name string, cc createCheck) (imageOutput, []string, error) {
	if err := remoteCreate(name, cc); err != nil {
		return nil, nil, err
	}
	sh, loc, err := smbOpen(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if loc.path == "" || strings.HasSuffix(name, "/") {
		return nil, nil, refuse(name, "it names no file", "add the image's name: %s/pc1.lbi", strings.TrimSuffix(name, "/"))
	}
	if dir := path.Dir(loc.path); dir != "." {
		if st, err := sh.Stat(dir); err != nil || !st.IsDir() {
			return nil, nil, &NotFoundError{Path: name, Msg: fmt.Sprintf("%s: the folder %s does not exist on the share; create it first", name, dir)}
		}
	}
	if _, err := sh.Stat(loc.path); err == nil && !cc.overwrite {
		return nil, nil, refuse(name, "a file of that name exists on the share", "choose another name, or add --overwrite to replace it")
	}
	var notes []string
	tmp := loc.path + ".partial"
	if _, err := sh.Stat(tmp); err == nil {
		if sh.Remove(tmp) == nil {
			notes = append(notes, fmt.Sprintf("removed %s.partial, left by an interrupted backup", name))
		}
	}
	f, err := sh.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: create %s on the share: %w", name, tmp, err)
	}
	u := &smbUpload{name: name, share: sh, tmp: tmp, dest: loc.path, f: f, w: bufio.NewWriterSize(smbWriter{f}, 1<<20), overwrite: cc.overwrite}
	return remoteOutput{name, u}, notes, nil
}

// smbWriter holds go-smb2's File.Write to io.Writer's contract: once the
// connection is gone it returns -1 with its error, and bufio.Writer,
// subtracting that from its buffered count, panics on the next write (seen
// with the server killed mid-upload).
type smbWriter struct{ f io.Writer }

func (w smbWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if n < 0 || n > len(p) {
		n = 0
		if err == nil {
			err = io.ErrShortWrite
		}
	}
	return n, err
}

func (u *smbUpload) Write(p []byte) (int, error) {
	n, err := u.w.Write(p)
	if err != nil {
		err = fmt.Errorf("%s: %w", u.name, err)
	}
	return n, err
}

func (u *smbUpload) Commit() error {
	if err := u.w.Flush(); err != nil {
		u.Abort()
		return fmt.Errorf("%s: %w", u.name, err)
	}
	if err := u.f.Sync(); err != nil {
		u.Abort()
		return fmt.Errorf("%s: flush: %w", u.name, err)
	}
	if err := u.f.Close(); err != nil {
		u.Abort()
		return fmt.Errorf("%s: %w", u.name, err)
	}
	if u.overwrite {
		u.share.Remove(u.dest)
	}
	if err := u.share.Rename(u.tmp, u.dest); err != nil {
		u.Abort()
		return fmt.Errorf("%s: rename: %w", u.name, err)
	}
	u.done = true
	return nil
}

func (u *smbUpload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.f.Close()
	u.share.Remove(u.tmp)
}

func (smbStore) remove(ctx context.Context, name string) error {
	sh, loc, err := smbOpen(ctx, name)
	if err != nil {
		return err
	}
	return sh.Remove(loc.path)
}

// list lists the images directly in a folder of a share.
func (smbStore) list(ctx context.Context, dir string) []string {
	sh, loc, err := smbOpen(ctx, dir)
	if err != nil {
		return nil
	}
	ents, err := sh.ReadDir(loc.path)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.Mode().IsRegular() && IsImageName(e.Name()) {
			out = append(out, strings.TrimSuffix(dir, "/")+"/"+e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// exists reports whether the name, or the .partial file of an unfinished
// upload to it, is on the share.
func (smbStore) exists(ctx context.Context, name string) bool {
	sh, loc, err := smbOpen(ctx, name)
	if err != nil {
		return false
	}
	for _, p := range []string{loc.path, loc.path + ".partial"} {
		if _, err := sh.Stat(p); err == nil {
			return true
		}
	}
	return false
}

func (smbStore) checkFolder(ctx context.Context, dir string) error {
	sh, loc, err := smbOpen(ctx, dir)
	if err != nil {
		return err
	}
	if loc.path == "" {
		return nil
	}
	st, err := sh.Stat(loc.path)
	if err != nil {
		return &NotFoundError{Path: dir, Msg: fmt.Sprintf("%s: no such folder on the share", dir)}
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	return nil
}
