//go:build linux

package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

var (
	// ErrTimeout means the console did not show what Expect waited for in
	// time. The error's text holds the last console lines: read them to see
	// where the guest got stuck.
	ErrTimeout = errors.New("qemu: timed out")
	// ErrExited means QEMU ended (the guest powered off, rebooted or
	// crashed) while Expect was still waiting; the text holds the last
	// console lines and QEMU's stderr.
	ErrExited = errors.New("qemu: QEMU exited")
)

const (
	// tailLines is how much console an error quotes.
	tailLines = 40
	// quietPartial is how long the console must stay silent before Expect
	// tries an unfinished last line (a prompt such as "login: "); earlier,
	// the rest of the line may still be on its way.
	quietPartial = 250 * time.Millisecond
)

// VM is a running QEMU. Its methods may be called from any goroutine, but
// Expect and ExpectAny consume console lines, so one goroutine should do
// the expecting.
type VM struct {
	ctx   context.Context
	cmd   *exec.Cmd
	argv  []string
	stdin *os.File
	qmp   *qmp
	net   NetMode
	dir   string
	start time.Time
	logf  func(format string, args ...any)

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced whenever the fields below change
	lines       []string
	partial     string    // output after the last newline
	lastOutput  time.Time // when partial last grew
	next        int       // first line Expect has not looked at
	skipPartial bool      // Expect matched partial: skip the line it becomes
	stderr      bytes.Buffer
	killed      bool
	exited      bool
	exitErr     error

	readers  sync.WaitGroup
	done     chan struct{} // closed once QEMU exited and its output is read
	killOnce sync.Once
}

// Start boots a VM and returns once QEMU runs the guest. QEMU is killed
// when ctx is cancelled; callers also register Kill with t.Cleanup.
func Start(ctx context.Context, o Options) (*VM, error) {
	accel := o.Accel
	if accel == AccelAuto {
		accel = AccelTCG
		if KVMUsable(ctx) {
			accel = AccelKVM
		}
	}
	dir, err := os.MkdirTemp("", "lifeboat-qemu-")
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	sock := filepath.Join(dir, "qmp.sock")
	if tmpl := o.Firmware.varsTemplate(); tmpl != "" {
		o.varsFile = filepath.Join(dir, "OVMF_VARS.fd")
		if err := copyFile(tmpl, o.varsFile); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("qemu: UEFI variables: %w; install Debian's ovmf package", err)
		}
	}
	args, err := o.args(accel, sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// QEMU connects to us (-chardev socket without server=on), so the
	// socket exists before QEMU starts and nothing polls for it.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("qemu: QMP socket: %w", err)
	}
	defer ln.Close()

	v := &VM{
		ctx:     ctx,
		argv:    append(netnsPrefix(o.NetNS), append([]string{Binary}, args...)...),
		net:     o.Net,
		dir:     dir,
		logf:    o.Log,
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if v.logf == nil {
		v.logf = func(string, ...any) {}
	}
	if err := v.startProcess(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	v.logf("qemu: started (%s): %s", accel, strings.Join(v.argv, " "))

	if err := v.connectQMP(ln); err != nil {
		// QEMU may connect and then give up on a later argument: say
		// that, with its exit status, rather than "QMP: EOF".
		select {
		case <-v.done:
			err = fmt.Errorf("qemu: %s failed to start: %w (%s)", strings.Join(v.argv, " "), ErrExited, v.status())
		case <-time.After(2 * time.Second):
		}
		v.Kill()
		return nil, v.withStderr(err)
	}
	if o.Net == NetNoCable {
		if err := v.SetLink(false); err != nil {
			v.Kill()
			return nil, v.withStderr(err)
		}
	}
	if err := v.qmp.do("cont", nil); err != nil {
		v.Kill()
		return nil, v.withStderr(err)
	}
	return v, nil
}

func (v *VM) startProcess() error {
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	// *os.File ends mean exec starts no copying goroutines: we read the
	// pipes ourselves, until EOF, which comes when QEMU exits.
	v.cmd = exec.CommandContext(v.ctx, v.argv[0], v.argv[1:]...)
	v.cmd.Stdin, v.cmd.Stdout, v.cmd.Stderr = stdinR, outW, errW
	err = v.cmd.Start()
	stdinR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		stdinW.Close()
		outR.Close()
		errR.Close()
		return fmt.Errorf("qemu: %s: %w", v.argv[0], err)
	}
	v.start = time.Now()
	v.stdin = stdinW
	v.readers.Add(2)
	go v.readConsole(outR)
	go v.readStderr(errR)
	go v.wait()
	return nil
}

// connectQMP accepts QEMU's connection, or gives up when QEMU exits first
// (a bad argument, a missing image).
func (v *VM) connectQMP(ln net.Listener) error {
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case a := <-ch:
		if a.err != nil {
			return fmt.Errorf("qemu: QMP: %w", a.err)
		}
		q, err := newQMP(a.c)
		if err != nil {
			a.c.Close()
			return err
		}
		v.qmp = q
		return nil
	case <-v.done:
		return fmt.Errorf("qemu: %s failed to start: %w (%s)", strings.Join(v.argv, " "), ErrExited, v.status())
	case <-timer.C:
		return fmt.Errorf("qemu: %s did not connect to its QMP socket within 30s", v.argv[0])
	case <-v.ctx.Done():
		return fmt.Errorf("qemu: start: %w", v.ctx.Err())
	}
}

func (v *VM) wait() {
	err := v.cmd.Wait()
	v.readers.Wait()
	v.mu.Lock()
	if v.partial != "" {
		v.lines = append(v.lines, clean(v.partial))
		v.partial = ""
	}
	switch {
	case v.killed:
		v.exitErr = errors.New("killed by the harness")
	case err != nil:
		v.exitErr = err
	}
	v.exited = true
	v.broadcast()
	v.mu.Unlock()
	if v.qmp != nil {
		v.qmp.close()
	}
	v.stdin.Close()
	os.RemoveAll(v.dir)
	close(v.done)
}

// status describes how QEMU ended; call it once QEMU has.
func (v *VM) status() string {
	if v.exitErr == nil {
		return "exit status 0"
	}
	return v.exitErr.Error()
}

// broadcast wakes everyone waiting on changed. Call with mu held.
func (v *VM) broadcast() {
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *VM) readConsole(r *os.File) {
	defer v.readers.Done()
	defer r.Close()
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			v.addOutput(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (v *VM) addOutput(b []byte) {
	v.mu.Lock()
	elapsed := time.Since(v.start)
	var complete []string
	// A terminal reset (ESC c, as SeaBIOS and the kernel print it) starts
	// a new screen, so a new line, not the rest of the last one.
	s := v.partial + strings.ReplaceAll(string(b), "\x1bc", "\n")
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		line := clean(s[:i])
		s = s[i+1:]
		v.lines = append(v.lines, line)
		complete = append(complete, line)
		if v.skipPartial {
			v.next = len(v.lines)
			v.skipPartial = false
		}
	}
	v.partial = s
	v.lastOutput = time.Now()
	v.broadcast()
	v.mu.Unlock()
	for _, line := range complete {
		v.logf("[%7.3fs] %s", elapsed.Seconds(), line)
	}
}

// ansiEscape matches the terminal escape sequences firmware and kernels
// print (SeaBIOS clears the screen with "\x1bc\x1b[?7l\x1b[2J"), which
// would otherwise glue themselves to the next line and defeat "^" in
// Expect's patterns.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-?]*[ -/]*[@-~]|\x1b[^\[]`)

// clean drops carriage returns and escape sequences from console text.
func clean(s string) string {
	return ansiEscape.ReplaceAllString(strings.ReplaceAll(s, "\r", ""), "")
}

func (v *VM) readStderr(r *os.File) {
	defer v.readers.Done()
	defer r.Close()
	buf := make([]byte, 4096)
	logged := 0 // bytes of stderr already logged
	for {
		n, err := r.Read(buf)
		v.mu.Lock()
		v.stderr.Write(buf[:n])
		s := v.stderr.String()[logged:]
		v.mu.Unlock()
		// QEMU writes its messages in pieces: log whole lines only.
		if err == nil {
			s = s[:strings.LastIndexByte(s, '\n')+1]
		}
		logged += len(s)
		for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
			if line != "" {
				v.logf("qemu stderr: %s", line)
			}
		}
		if err != nil {
			return
		}
	}
}

// withStderr appends what QEMU printed on stderr to err.
func (v *VM) withStderr(err error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := strings.TrimSpace(v.stderr.String()); s != "" {
		return fmt.Errorf("%w\nqemu stderr:\n%s", err, s)
	}
	return err
}

// Expect waits for a console line that matches the regular expression re
// and returns its submatches. Lines Expect has looked at are consumed: a
// later Expect only sees what came after the matching line, including lines
// that arrived before it was called. Lines are matched without their
// carriage returns and terminal escape sequences. An unfinished last line
// (a prompt) is tried once the console has been quiet for a moment.
func (v *VM) Expect(re string, timeout time.Duration) ([]string, error) {
	_, m, err := v.ExpectAny(timeout, re)
	return m, err
}

// ExpectAny is Expect for several regular expressions: it returns the index
// of the first one that matches a line, and that match's submatches.
func (v *VM) ExpectAny(timeout time.Duration, res ...string) (int, []string, error) {
	rs := make([]*regexp.Regexp, len(res))
	for i, s := range res {
		re, err := regexp.Compile(s)
		if err != nil {
			return -1, nil, fmt.Errorf("qemu: Expect: %w", err)
		}
		rs[i] = re
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		v.mu.Lock()
		for v.next < len(v.lines) {
			line := v.lines[v.next]
			v.next++
			if i, m := match(rs, line); m != nil {
				v.mu.Unlock()
				return i, m, nil
			}
		}
		var quiet <-chan time.Time
		if v.partial != "" && !v.skipPartial {
			if wait := quietPartial - time.Since(v.lastOutput); wait > 0 {
				quiet = time.After(wait)
			} else if i, m := match(rs, clean(v.partial)); m != nil {
				v.skipPartial = true
				v.mu.Unlock()
				return i, m, nil
			}
		}
		changed, exited := v.changed, v.exited
		v.mu.Unlock()
		if exited {
			return -1, nil, fmt.Errorf("%w (%s) before a console line matched %s; %s",
				ErrExited, v.status(), quote(res), v.tail())
		}
		select {
		case <-changed:
		case <-quiet:
		case <-deadline.C:
			return -1, nil, fmt.Errorf("%w: no console line matched %s within %v (%.1fs after start); %s",
				ErrTimeout, quote(res), timeout, v.Elapsed().Seconds(), v.tail())
		case <-v.ctx.Done():
			return -1, nil, fmt.Errorf("qemu: expecting %s: %w", quote(res), v.ctx.Err())
		}
	}
}

func match(rs []*regexp.Regexp, line string) (int, []string) {
	for i, re := range rs {
		if m := re.FindStringSubmatch(line); m != nil {
			return i, m
		}
	}
	return -1, nil
}

func quote(res []string) string {
	q := make([]string, len(res))
	for i, s := range res {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, " or ")
}

// tail describes the last console lines and QEMU's stderr, for errors.
func (v *VM) tail() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	lines := v.lines
	if v.partial != "" {
		lines = append(lines[:len(lines):len(lines)], clean(v.partial))
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	s := fmt.Sprintf("last %d console lines:\n%s", len(lines), strings.Join(lines, "\n"))
	if e := strings.TrimSpace(v.stderr.String()); e != "" {
		s += "\nqemu stderr:\n" + e
	}
	return s
}

// Send types s on the serial console. End it with "\n" to finish a line.
func (v *VM) Send(s string) error {
	select {
	case <-v.done:
		return fmt.Errorf("qemu: send %q: %w (%s)", s, ErrExited, v.status())
	default:
	}
	if _, err := v.stdin.WriteString(s); err != nil {
		return fmt.Errorf("qemu: send %q: %w", s, err)
	}
	return nil
}

// Console returns everything the console showed so far, lines joined by
// "\n", without carriage returns and terminal escape sequences.
func (v *VM) Console() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := strings.Join(v.lines, "\n")
	if len(v.lines) > 0 {
		s += "\n"
	}
	return s + clean(v.partial)
}

// SetLink plugs the NIC's cable in (up) or pulls it out. The VM must have
// a NIC: NetNoCable, NetNoDHCP or NetUser.
func (v *VM) SetLink(up bool) error {
	if v.net == NetNone {
		return errors.New("qemu: SetLink: the VM has no NIC; start it with Options.Net = NetNoCable or NetUser")
	}
	return v.qmp.do("set_link", map[string]any{"name": netID, "up": up})
}

// Wait waits for QEMU to exit, which with -no-reboot is the guest powering
// off or rebooting. After timeout it kills QEMU and returns an error that
// says so. It returns QEMU's exit error with its stderr, nil on a clean
// exit.
func (v *VM) Wait(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-v.done:
		if v.exitErr != nil {
			return v.withStderr(fmt.Errorf("%w: %v", ErrExited, v.exitErr))
		}
		return nil
	case <-timer.C:
		tail := v.tail()
		v.Kill()
		return fmt.Errorf("qemu: the guest was still running %v after Wait began (%.1fs after start); killed it; %s",
			timeout, v.Elapsed().Seconds(), tail)
	case <-v.ctx.Done():
		<-v.done
		return fmt.Errorf("qemu: wait: %w", v.ctx.Err())
	}
}

// Kill stops QEMU and returns once its output is read. It may be called
// more than once, and after QEMU has exited.
func (v *VM) Kill() {
	v.killOnce.Do(func() {
		v.mu.Lock()
		if !v.exited {
			v.killed = true
		}
		v.mu.Unlock()
		v.cmd.Process.Kill()
	})
	<-v.done
}

// Elapsed returns the time since QEMU started.
func (v *VM) Elapsed() time.Duration { return time.Since(v.start) }

// copyFile copies a small file (the firmware's variable store).
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}
