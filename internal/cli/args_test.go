package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Arguments in the wrong place get the command back corrected, with exit 2,
// instead of cobra's "unknown shorthand flag" or "accepts between 1 and 1
// arg(s)".
func TestArgumentErrorsShowTheRightForm(t *testing.T) {
	for _, tc := range []struct {
		args string
		want string
	}{
		{"backup /dev/loop0 disk -o x.lbi", `"disk" goes right after "backup": lifeboat backup disk /dev/loop0 -o x.lbi`},
		{"backup /dev/loop0 part -o x.lbi", `lifeboat backup part /dev/loop0 -o x.lbi`},
		{"backup /dev/loop0", "lifeboat backup disk SOURCE -o IMAGE; lifeboat backup part SOURCE -o IMAGE"},
		{"backup disk", `"lifeboat disks" lists them`},
		{"backup disk /dev/loop0 x.lbi", "takes the image with -o: lifeboat backup disk /dev/loop0 -o x.lbi"},
		{"clone disk A B", "clone disk takes the target with --target: lifeboat clone disk A --target B"},
		{"clone part A B", "lifeboat clone part A --target B"},
		{"clone A disk --target B", "lifeboat clone disk A --target B"},
		{"clone disk", "lifeboat clone disk SOURCE --target DISK"},
		{"restore x.lbi /dev/sdb", "restore takes the target with --target: lifeboat restore x.lbi --target /dev/sdb"},
		{"restore", "lifeboat restore IMAGE --target DEVICE"},
		{"merge inc.lbi full.lbi", "lifeboat merge inc.lbi -o full.lbi"},
		{"pxe x", "lifeboat pxe serve"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Execute(context.Background(), strings.Fields(tc.args), strings.NewReader(""), &out, &errb)
			if ExitCode(err) != ExitUsage {
				t.Fatalf("exit %d (%v), want %d", ExitCode(err), err, ExitUsage)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q lacks %q", err, tc.want)
			}
		})
	}
	// A group alone still shows its help.
	var out bytes.Buffer
	if err := Execute(context.Background(), []string{"backup"}, strings.NewReader(""), &out, &out); err != nil || !strings.Contains(out.String(), "part") {
		t.Errorf("backup alone: %v\n%s", err, out.String())
	}
}

func TestReadRawLine(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"sdb\r", "sdb", ""},
		{"sdx\x7fb\r", "sdb", ""},
		{"wrong\x15sdb\r", "sdb", ""},
		{"s\x1b[Ad\x1bOBb\r", "sdb", ""},
		{"sd\x03", "", "Ctrl-C"},
		{"\x04", "", "Ctrl-D"},
		{"sd", "", "end of input"},
	} {
		var echo bytes.Buffer
		got, err := readRawLine(strings.NewReader(tc.in), &echo, true)
		if string(got) != tc.want || (tc.err == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.err) || ExitCode(err) != ExitCancelled)) {
			t.Errorf("%q → %q, %v; want %q, %s", tc.in, got, err, tc.want, tc.err)
		}
	}
}
