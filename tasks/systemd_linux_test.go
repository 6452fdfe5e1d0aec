package tasks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bootSystemd starts the machine's own systemd as PID 1 of a container:
// new PID, mount, cgroup, UTS, IPC and network namespaces, the host's /
// under an overlay (what the container writes stays in a tmpfs), a fresh
// cgroup2 mount in a cgroup of its own, /proc/sys and /sys read-only (so
// it changes nothing of the host kernel's), and the test's folder bound
// at its own path so both sides see the task's files. prepare runs inside
// the namespaces on the new root ($M) before systemd starts. It returns
// the PID of systemd (for nsenter) after the system is up.
func bootSystemd(t *testing.T, dir, prepare string) int {
	t.Helper()
	for _, tool := range []string{"unshare", "nsenter", "/lib/systemd/systemd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (make deps installs util-linux and systemd): %v", tool, err)
		}
	}
	work, err := os.MkdirTemp("", "lifeboat-systemd-")
	if err != nil {
		t.Fatal(err)
	}
	cg := "/sys/fs/cgroup/unified/" + filepath.Base(work)
	if _, err := os.Stat("/sys/fs/cgroup/unified"); err != nil {
		cg = "/sys/fs/cgroup/" + filepath.Base(work) // a pure cgroup2 host
	}
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatalf("a cgroup for the container: %v", err)
	}
	script := fmt.Sprintf(`set -e
W=%[1]s; D=%[2]s
mount -t tmpfs tmpfs $W
mkdir $W/lo $W/up $W/wk $W/m
M=$W/m
mount --bind / $W/lo
mount -t overlay overlay -o lowerdir=$W/lo,upperdir=$W/up,workdir=$W/wk $M
mount -t proc proc $M/proc
mount --bind $M/proc/sys $M/proc/sys
mount -o remount,bind,ro $M/proc/sys
mount -t sysfs -o ro sysfs $M/sys
mount -t cgroup2 cgroup2 $M/sys/fs/cgroup
mount -t tmpfs -o mode=755 tmpfs $M/dev
mknod -m 666 $M/dev/null c 1 3; mknod -m 666 $M/dev/zero c 1 5; mknod -m 666 $M/dev/full c 1 7
mknod -m 666 $M/dev/random c 1 8; mknod -m 666 $M/dev/urandom c 1 9; mknod -m 666 $M/dev/tty c 5 0
mount -t tmpfs tmpfs $M/run
mount -t tmpfs tmpfs $M/tmp
mkdir -p $M$D
mount --bind $D $M$D
# Only this test's timers: none of the host's.
rm -f $M/etc/systemd/system/timers.target.wants/*
cat > $M/etc/systemd/system/lifeboat-test.target <<EOF
[Unit]
Description=Lifeboat test system
Wants=timers.target
After=timers.target
EOF
%[3]s
exec chroot $M /usr/bin/env -i container=lifeboat-test /lib/systemd/systemd --unit=lifeboat-test.target
`, work, dir, prepare)
	sp := filepath.Join(dir, "boot.sh")
	os.WriteFile(sp, []byte(script), 0o700)
	logf, _ := os.Create(filepath.Join(dir, "systemd.log"))
	cmd := exec.Command("sh", "-c", fmt.Sprintf("echo $$ > %s/cgroup.procs && exec unshare --cgroup --mount --pid --fork --uts --ipc --net --propagation private sh %s", cg, sp))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// systemd is the child of unshare (cmd's process, which sh exec'd)
	// once the script has exec'd it.
	var pid int
	deadline := time.Now().Add(60 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		out, _ := exec.Command("ps", "-o", "pid=,comm=", "--ppid", strconv.Itoa(cmd.Process.Pid)).Output()
		if f := strings.Fields(string(out)); len(f) == 2 && f[1] == "systemd" {
			pid, _ = strconv.Atoi(f[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if pid != 0 {
			exec.Command("nsenter", "-t", strconv.Itoa(pid), "-a", "-r", "-w", "systemctl", "poweroff").Run()
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			// systemd is in a session of its own: end it (the whole
			// container goes with its PID 1), then unshare.
			if pid != 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		exec.Command("find", cg, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";").Run()
		os.RemoveAll(work)
	})
	if pid == 0 {
		b, _ := os.ReadFile(filepath.Join(dir, "systemd.log"))
		t.Fatalf("systemd did not start:\n%s", b)
	}
	for {
		out, _ := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-a", "-r", "-w", "systemctl", "is-system-running").Output()
		s := strings.TrimSpace(string(out))
		if s == "running" || s == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "systemd.log"))
			t.Fatalf("systemd is %q after 60 s:\n%s", s, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return pid
}

func inContainer(t *testing.T, pid int, argv ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-a", "-r", "-w"}, argv...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("in the container: %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// TestSystemdRunsTheTask: real systemd, as PID 1 of a container, runs a
// task from the units "lifeboat task install" wrote. The task's daily
// 02:00 timer last elapsed the day before yesterday (its Persistent=
// stamp), as if the machine had been off at 02:00: systemd runs the missed
// backup as it starts, and the run is in the task's log with its image.
// Then an install in the running system enables and starts a second
// task's timer (daemon-reload, enable --now), and uninstall stops and
// removes it.
func TestSystemdRunsTheTask(t *testing.T) {
	te := newTaskEnv(t, Task{})
	exe := lifeboatForTest(t)
	binDir := filepath.Join(te.dir, "bin")
	os.Mkdir(binDir, 0o755)
	lb := filepath.Join(binDir, "lifeboat")
	sh(t, "cp", exe, lb)
	te.save(Task{Name: "nightly", Source: "part:" + te.fs.img, Dest: te.dest, Schedule: []string{"daily 02:00"}})
	env := fmt.Sprintf("LIFEBOAT_CONFIG=%s LIFEBOAT_STATE=%s", te.paths.Config, te.paths.State)
	old := time.Now().AddDate(0, 0, -2).Format("2006-01-02") + " 01:00"
	prepare := fmt.Sprintf(`%s %s task install --root $M
mkdir -p $M/var/lib/systemd/timers
touch -d '%s' $M/var/lib/systemd/timers/stamp-lifeboat-task-nightly.timer`, env, lb, old)
	pid := bootSystemd(t, te.dir, prepare)

	deadline := time.Now().Add(3 * time.Minute)
	var rec Record
	for {
		if recs, _, _ := ReadLog(te.paths.Log, "nightly"); len(recs) > 0 {
			rec = recs[0]
			break
		}
		if time.Now().After(deadline) {
			st, _ := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-a", "-r", "-w", "systemctl", "status", "lifeboat-task-nightly.timer", "lifeboat-task-nightly.service").CombinedOutput()
			t.Fatalf("systemd did not run the missed backup:\n%s", st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if rec.Result != "success" || rec.Trigger != "scheduled" || rec.Kind != "full" {
		t.Fatalf("the scheduled run: %+v", rec)
	}
	if _, err := os.Stat(rec.Image); err != nil {
		t.Fatalf("its image: %v", err)
	}
	if out := inContainer(t, pid, "systemctl", "show", "-p", "Result", "--value", "lifeboat-task-nightly.service"); strings.TrimSpace(out) != "success" {
		t.Fatalf("the service's result: %s", out)
	}

	// A live install: daemon-reload, enable --now.
	te.save(Task{Name: "nightly", Source: "part:" + te.fs.img, Dest: te.dest, Schedule: []string{"daily 02:00"}},
		Task{Name: "weekly", Source: "part:" + te.fs.img, Dest: te.dest, Schedule: []string{"weekly sun 03:00"}})
	inContainer(t, pid, "env", "LIFEBOAT_CONFIG="+te.paths.Config, "LIFEBOAT_STATE="+te.paths.State, lb, "task", "install")
	if out := inContainer(t, pid, "systemctl", "is-active", "lifeboat-task-weekly.timer"); strings.TrimSpace(out) != "active" {
		t.Fatalf("the new timer is %s", out)
	}
	next := inContainer(t, pid, "systemctl", "show", "-p", "NextElapseUSecRealtime", "--value", "lifeboat-task-weekly.timer")
	tr, _ := ParseTrigger("weekly sun 03:00")
	if want := tr.Next(time.Now()); !strings.Contains(next, want.Format("2006-01-02")+" 03:00:00") {
		t.Fatalf("systemd's next elapse %q, the task's %s", next, want)
	}
	inContainer(t, pid, "env", "LIFEBOAT_CONFIG="+te.paths.Config, "LIFEBOAT_STATE="+te.paths.State, lb, "task", "uninstall")
	if out, _ := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-a", "-r", "-w", "systemctl", "list-unit-files", "lifeboat-task-*").CombinedOutput(); !strings.Contains(string(out), "0 unit files listed") {
		t.Fatalf("after uninstall:\n%s", out)
	}
}
