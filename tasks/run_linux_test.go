package tasks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// taskEnv is a task over a small real ext4, with its own configuration,
// state and destination.
type taskEnv struct {
	t     *testing.T
	dir   string
	fs    *fsChanger
	paths Paths
	dest  string
}

func newTaskEnv(t *testing.T, task Task) *taskEnv {
	dir := t.TempDir()
	te := &taskEnv{t: t, dir: dir, dest: filepath.Join(dir, "dest"),
		paths: Paths{Config: filepath.Join(dir, "tasks.yaml"), State: filepath.Join(dir, "state"), Log: filepath.Join(dir, "state", "tasks.jsonl")}}
	os.Mkdir(te.dest, 0o755)
	te.fs = newFS(t, dir, 1)
	te.fs.day()
	if task.Name == "" {
		task.Name = "t1"
	}
	task.Source, task.Compression = "part:"+te.fs.img, "fast"
	if task.Dest == "" {
		task.Dest = te.dest
	}
	te.save(task)
	return te
}

func (te *taskEnv) save(tasks ...Task) {
	cfg := &Config{path: te.paths.Config, Tasks: tasks}
	if err := cfg.Save(); err != nil {
		te.t.Fatal(err)
	}
}

func (te *taskEnv) run(name string) (*Record, error) {
	r := &Runner{Paths: te.paths}
	return r.Run(context.Background(), name, "")
}

func (te *taskEnv) lastLog() Record {
	recs, _, err := ReadLog(te.paths.Log, "")
	if err != nil || len(recs) == 0 {
		te.t.Fatalf("no log record: %v", err)
	}
	return recs[len(recs)-1]
}

func lbiFiles(t *testing.T, dir string) []string {
	var out []string
	for _, n := range listDir(t, dir) {
		if strings.Contains(n, ".lbi") {
			out = append(out, n)
		}
	}
	return out
}

func TestPrePostCommands(t *testing.T) {
	marker := "sleep 297.25" // a command line no one else runs
	te := newTaskEnv(t, Task{Pre: "echo stopping db; echo oops >&2; exit 4", Post: "echo post ran > " + "POSTFILE"})
	post := filepath.Join(te.dir, "post-ran")
	task := Task{Name: "t1", Source: "part:" + te.fs.img, Dest: te.dest, Pre: "echo stopping db; echo oops >&2; exit 4", Post: "echo post ran > " + post}

	// A failing pre command: no backup, the post command still runs,
	// everything in the log.
	te.save(task)
	rec, err := te.run("t1")
	if err == nil || !strings.Contains(err.Error(), `pre command "echo stopping db; echo oops >&2; exit 4" failed with exit code 4: oops`) || !strings.Contains(err.Error(), "no backup was made") {
		t.Fatalf("failing pre: %v", err)
	}
	if rec.Result != "skipped" || len(lbiFiles(t, te.dest)) != 0 {
		t.Fatalf("failing pre: %s, images %v", rec.Result, lbiFiles(t, te.dest))
	}
	if _, err := os.Stat(post); err != nil {
		t.Fatalf("the post command did not run after a failing pre command: %v", err)
	}
	l := te.lastLog()
	if l.Pre == nil || l.Pre.Exit != 4 || !strings.Contains(l.Pre.Output, "stopping db") || !strings.Contains(l.Pre.Output, "oops") || l.Post == nil || !l.Post.OK() {
		t.Fatalf("log: %+v %+v", l.Pre, l.Post)
	}

	// on-pre-failure: continue.
	task.OnPreFailure = "continue"
	te.save(task)
	rec, err = te.run("t1")
	if err != nil || rec.Result != "success" || len(rec.Warnings) == 0 || !strings.Contains(rec.Warnings[0], "the backup went on") {
		t.Fatalf("continue: %v %+v", err, rec)
	}

	// A hanging pre command is stopped at its timeout with everything it
	// started.
	task.Pre, task.PreTimeout, task.OnPreFailure = "echo started; "+marker+" & "+marker+"; echo never", "1s", ""
	te.save(task)
	start := time.Now()
	rec, err = te.run("t1")
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "did not finish in 1s and was stopped") || took > 30*time.Second {
		t.Fatalf("hanging pre: %v after %s", err, took)
	}
	if !rec.Pre.TimedOut || !strings.Contains(rec.Pre.Output, "started") {
		t.Fatalf("hanging pre: %+v", rec.Pre)
	}
	time.Sleep(200 * time.Millisecond)
	if out, _ := exec.Command("pgrep", "-f", marker).Output(); len(out) > 0 {
		exec.Command("pkill", "-f", marker).Run()
		t.Fatalf("the pre command's children outlived its timeout: %s", out)
	}
}

func TestTwoRunsAtOnce(t *testing.T) {
	te := newTaskEnv(t, Task{})
	gate := filepath.Join(te.dir, "gate")
	te.save(Task{Name: "t1", Source: "part:" + te.fs.img, Dest: te.dest, Pre: "touch " + gate + ".in; while [ ! -e " + gate + " ]; do sleep 0.05; done"})
	var wg sync.WaitGroup
	var first *Record
	var firstErr error
	wg.Go(func() { first, firstErr = te.run("t1") })
	for i := 0; ; i++ {
		if _, err := os.Stat(gate + ".in"); err == nil {
			break
		}
		if i > 600 {
			t.Fatal("the first run never started its pre command")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec, err := te.run("t1")
	os.WriteFile(gate, nil, 0o600)
	wg.Wait()
	if !errors.Is(err, engine.ErrRefused) || !strings.Contains(err.Error(), `task "t1" is already running (process `) {
		t.Fatalf("second run: %v", err)
	}
	if rec.Result != "skipped" || rec.Image != "" {
		t.Fatalf("second run: %+v", rec)
	}
	if firstErr != nil || first.Result != "success" {
		t.Fatalf("first run: %v %+v", firstErr, first)
	}
	recs, _, _ := ReadLog(te.paths.Log, "t1")
	if len(recs) != 2 || recs[0].Result != "skipped" || !strings.Contains(recs[0].Error, "already running") {
		t.Fatalf("log: %+v", recs)
	}
	// The lock goes with the run: a third run works.
	if _, err := te.run("t1"); err != nil {
		t.Fatal(err)
	}
}

// smtpServer is a real SMTP server (go-smtp) on loopback: STARTTLS with a
// certificate of its own, AUTH PLAIN, no authentication without TLS.
type smtpServer struct {
	addr   string
	caFile string
	mu     sync.Mutex
	mails  []string
	user   string
	pass   string
	srv    *smtp.Server
}

func (s *smtpServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s}, nil }

type smtpSession struct {
	s      *smtpServer
	authed bool
	from   string
	to     []string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}
func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}
func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, fmt.Sprintf("FROM %s TO %s\n%s", ss.from, strings.Join(ss.to, ","), b))
	ss.s.mu.Unlock()
	return err
}
func (ss *smtpSession) Reset()        {}
func (ss *smtpSession) Logout() error { return nil }

func startSMTP(t *testing.T, dir string) *smtpServer { return startSMTPWith(t, dir, false) }

// startSMTPWith starts the server; implicit makes it TLS from the first
// byte (smtps) instead of offering STARTTLS.
func startSMTPWith(t *testing.T, dir string, implicit bool) *smtpServer {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{user: "backup", pass: "s3cret pass", caFile: filepath.Join(dir, "ca.pem")}
	os.WriteFile(s.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	srv := smtp.NewServer(s)
	srv.Domain = "mail.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	s.addr, s.srv = l.Addr().String(), srv
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func TestNotifications(t *testing.T) {
	te := newTaskEnv(t, Task{})
	s := startSMTP(t, te.dir)
	pwFile := filepath.Join(te.dir, "smtp.pass")
	os.WriteFile(pwFile, []byte(s.pass+"\n"), 0o600)
	var hooks []Webhook
	var hmu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h Webhook
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&h) != nil {
			http.Error(w, "bad request", 400)
			return
		}
		hmu.Lock()
		hooks = append(hooks, h)
		hmu.Unlock()
	}))
	defer hs.Close()
	mailURL := fmt.Sprintf("smtp://backup@%s?to=admin@example.test,ops@example.test&from=lifeboat@pc1.test&password-file=%s&ca-file=%s", s.addr, pwFile, s.caFile)
	task := Task{Name: "t1", Source: "part:" + te.fs.img, Dest: te.dest, Notify: []string{mailURL, hs.URL + "/hook"}, NotifyOn: "always"}
	te.save(task)
	rec, err := te.run("t1")
	if err != nil || len(rec.Notified) != 2 || strings.Contains(strings.Join(rec.Notified, " "), ": ") {
		t.Fatalf("run: %v, notified %v", err, rec.Notified)
	}
	s.mu.Lock()
	if len(s.mails) != 1 {
		t.Fatalf("mails: %q", s.mails)
	}
	env, raw, _ := strings.Cut(s.mails[0], "\n")
	s.mu.Unlock()
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if env != "FROM lifeboat@pc1.test TO admin@example.test,ops@example.test" || !strings.Contains(msg.Header.Get("Subject"), "task t1 succeeded (full backup") ||
		!strings.Contains(string(body), "Image:    "+rec.Image) || !strings.Contains(string(body), "Result:   success") {
		t.Fatalf("mail: %s\n%s\n%s", env, msg.Header, body)
	}
	if len(hooks) != 1 || hooks[0].Record.Result != "success" || hooks[0].Record.Image != rec.Image || !strings.Contains(hooks[0].Subject, "succeeded") {
		t.Fatalf("webhook: %+v", hooks)
	}
	if b, _ := os.ReadFile(te.paths.Config); strings.Contains(string(b), s.pass) {
		t.Fatal("the SMTP password is in the configuration file")
	}
	if b, _ := os.ReadFile(te.paths.Log); strings.Contains(string(b), s.pass) {
		t.Fatal("the SMTP password is in the log")
	}

	// A failing run with notify-on failure; a wrong SMTP password; the
	// webhook answering 500: the run's own result stands, each failed
	// notification is a warning in the log.
	os.WriteFile(pwFile, []byte("wrong\n"), 0o600)
	task.NotifyOn, task.Dest = "failure", filepath.Join(te.dir, "not-mounted")
	task.Notify = []string{mailURL, hs.URL + "/hook"}
	te.save(task)
	rec, err = te.run("t1")
	if err == nil || !strings.Contains(err.Error(), "not-mounted does not exist") {
		t.Fatalf("missing dest: %v", err)
	}
	if len(hooks) != 2 || hooks[1].Record.Result != "failure" || !strings.Contains(hooks[1].Record.Error, "not-mounted") {
		t.Fatalf("webhook on failure: %+v", hooks)
	}
	l := te.lastLog()
	if !strings.Contains(strings.Join(l.Warnings, "\n"), "notification to smtp://backup@") || l.Result != "failure" {
		t.Fatalf("wrong SMTP password: %+v", l)
	}

	// SMTP down: the port closed.
	s.srv.Close()
	os.WriteFile(pwFile, []byte(s.pass+"\n"), 0o600)
	task.Notify = []string{mailURL}
	te.save(task)
	te.run("t1")
	l = te.lastLog()
	if len(l.Notified) != 1 || !strings.Contains(l.Notified[0], s.addr) || !strings.Contains(strings.Join(l.Warnings, "\n"), "notification to") {
		t.Fatalf("SMTP down: %+v", l)
	}

	// smtps: TLS from the first byte.
	os.MkdirAll(filepath.Join(te.dir, "tls"), 0o755)
	s2 := startSMTPWith(t, filepath.Join(te.dir, "tls"), true)
	task.Notify = []string{fmt.Sprintf("smtps://backup@%s?to=admin@example.test&password-file=%s&ca-file=%s", s2.addr, pwFile, s2.caFile)}
	te.save(task)
	te.run("t1")
	if l := te.lastLog(); len(l.Notified) != 1 || strings.Contains(l.Notified[0], ": ") || len(s2.mails) != 1 {
		t.Fatalf("smtps: %+v, %d mails", l.Notified, len(s2.mails))
	}

	// Success is not mailed with notify-on failure.
	task.Dest = te.dest
	te.save(task)
	if rec, err := te.run("t1"); err != nil || len(rec.Notified) != 0 {
		t.Fatalf("success with notify-on failure: %v %v", err, rec.Notified)
	}
}

func TestRetentionNeverBreaksAChain(t *testing.T) {
	te := newTaskEnv(t, Task{Scheme: "full keep=1"})
	first, err := te.run("t1")
	if err != nil {
		t.Fatal(err)
	}
	// Someone builds an incremental of their own on the task's image.
	te.fs.day()
	mine := filepath.Join(te.dest, "mine-inc.lbi")
	sh(t, lifeboatForTest(t), "-q", "backup", "part", te.fs.img, "--incremental", first.Image, "-o", mine)
	rec, err := te.run("t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Deleted) != 0 || !strings.Contains(strings.Join(rec.Warnings, "\n"), "kept "+first.Image+": an image outside the task's retention still builds on it") {
		t.Fatalf("deleted %v, warnings %v", rec.Deleted, rec.Warnings)
	}
	if _, err := engine.Check(context.Background(), engine.CheckOptions{Image: mine}); err != nil {
		t.Fatalf("the user's incremental no longer checks: %v", err)
	}
	// A point of the task's chain deleted by hand: the next run starts a
	// new full backup instead of building on a broken chain.
	te2 := newTaskEnv(t, Task{Scheme: "incremental"})
	te2.run("t1")
	inc, _ := te2.run("t1")
	te2.run("t1")
	os.Remove(inc.Image)
	rec, err = te2.run("t1")
	if err != nil || rec.Kind != "full" || !strings.Contains(strings.Join(rec.Warnings, "\n"), "is gone") {
		t.Fatalf("after a point was deleted by hand: %v %s %v", err, rec.Kind, rec.Warnings)
	}
}

func TestMaxSizeMergesForward(t *testing.T) {
	te := newTaskEnv(t, Task{})
	task := Task{Name: "t1", Source: "part:" + te.fs.img, Dest: te.dest, Scheme: "incremental max-size=100M"}
	te.save(task)
	var last *Record
	for range 3 {
		te.fs.day()
		r, err := te.run("t1")
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	es, _ := Images(te.paths.State, "t1")
	var size int64
	for _, e := range es {
		size += e.Size
	}
	want := treeHash(t, te.fs.img)
	// Now a limit below what the group holds, above one full backup.
	task.Scheme = fmt.Sprintf("incremental max-size=%d", size-1)
	te.save(task)
	rec, err := te.run("t1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Merged == "" || len(rec.Deleted) != 4 {
		t.Fatalf("merged %q, deleted %v (last %s)", rec.Merged, rec.Deleted, last.Image)
	}
	es, _ = Images(te.paths.State, "t1")
	if len(es) != 1 || es[0].File != rec.Merged || es[0].Kind != "full" || !es[0].Merged {
		t.Fatalf("kept %+v", es)
	}
	out := filepath.Join(te.dir, "restored.img")
	if _, err := engine.Restore(context.Background(), engine.RestoreOptions{Image: rec.Merged, Target: out}); err != nil {
		t.Fatal(err)
	}
	if treeHash(t, out) != want {
		t.Fatal("the merged full does not restore to the newest point's data")
	}
	if got := lbiFiles(t, te.dest); len(got) != 1 || got[0] != filepath.Base(rec.Merged) {
		t.Fatalf("destination: %v", got)
	}
	// The last full backup is never deleted for space.
	task.Scheme = "full max-size=1K"
	te.save(task)
	rec, err = te.run("t1")
	if err != nil || !strings.Contains(strings.Join(rec.Warnings, "\n"), "but the last full backup is kept") || len(lbiFiles(t, te.dest)) != 1 {
		t.Fatalf("max-size below one full: %v %v %v", err, rec.Warnings, lbiFiles(t, te.dest))
	}
}

// TestDestinationFull: a destination that fills up mid-backup fails the
// run, leaves no image and no partial file, and the log says why.
func TestDestinationFull(t *testing.T) {
	te := newTaskEnv(t, Task{})
	small := filepath.Join(te.dir, "small")
	os.Mkdir(small, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "lifeboat-test-full", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", small).Run()
	// Incompressible data the destination cannot hold.
	rnd := filepath.Join(te.dir, "random")
	b := make([]byte, 2<<20)
	rand.Read(b)
	os.WriteFile(rnd, b, 0o600)
	sh(t, "debugfs", "-w", "-R", "write "+rnd+" random", te.fs.img)
	te.save(Task{Name: "t1", Source: "part:" + te.fs.img, Dest: small})
	rec, err := te.run("t1")
	if err == nil || !strings.Contains(err.Error(), `task "t1": full backup of `) {
		t.Fatalf("full destination: %v", err)
	}
	if ents := listDir(t, small); len(ents) != 0 {
		t.Fatalf("left in the destination: %v", ents)
	}
	if l := te.lastLog(); l.Result != "failure" || l.Error != rec.Error {
		t.Fatalf("log: %+v", l)
	}
	if es, _ := Images(te.paths.State, "t1"); len(es) != 0 {
		t.Fatalf("catalogue: %+v", es)
	}
}

func TestUnknownTaskAndBrokenConfig(t *testing.T) {
	te := newTaskEnv(t, Task{})
	_, err := te.run("nope")
	if err == nil || !strings.Contains(err.Error(), `no task "nope": the tasks in `+te.paths.Config+` are: t1`) || engine.ExitCode(err) != engine.ExitNotFound {
		t.Fatalf("unknown task: %v", err)
	}
	if l := te.lastLog(); l.Task != "nope" || l.Result != "failure" {
		t.Fatalf("log: %+v", l)
	}
	os.WriteFile(te.paths.Config, []byte("tasks:\n  - name: t1\n    source: part:/x\n    dest: /d\n    schedule: dayly\n"), 0o600)
	_, err = te.run("t1")
	if err == nil || !strings.Contains(err.Error(), te.paths.Config+`:5: task "t1": schedule: "dayly"`) {
		t.Fatalf("broken config: %v", err)
	}
	if l := te.lastLog(); l.Task != "t1" || !strings.Contains(l.Error, "dayly") {
		t.Fatalf("log: %+v", l)
	}
}
