package tasks

import (
	"context"
	"os/exec"
	"strconv"
	"syscall"
)

func shell(ctx context.Context, command string) *exec.Cmd {
	c := exec.CommandContext(ctx, "cmd.exe")
	// cmd /C takes the rest of its command line as it is: no quoting.
	c.SysProcAttr = &syscall.SysProcAttr{CmdLine: `cmd.exe /C ` + command}
	return c
}

// killGroup makes a timeout end the command and the processes it started
// (taskkill /T), not only cmd.exe.
func killGroup(c *exec.Cmd) {
	c.Cancel = func() error {
		exec.Command("taskkill", "/T", "/F", "/PID", strconv.Itoa(c.Process.Pid)).Run()
		return c.Process.Kill()
	}
}
