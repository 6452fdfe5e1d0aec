package rescue

import (
	"context"
	"errors"
	"fmt"
	"github.com/lifeboat-rescue/lifeboat/engine/layout"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

func TestParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Job
		err  string
	}{
		{"console=ttyS0 quiet", Job{}, ""},
		{`console=ttyS0 lifeboat.action=restore lifeboat.image=LABEL=IMAGES:/backups/pc1.lbi lifeboat.target=first-empty-disk lifeboat.done=poweroff`,
			Job{Action: ActionRestore, Image: "LABEL=IMAGES:/backups/pc1.lbi", Target: "first-empty-disk", Done: DonePowerOff}, ""},
		{`lifeboat.action=restore lifeboat.image="LABEL=MY IMAGES:/a b.lbi" lifeboat.target=serial=WD-1 lifeboat.partition=2 lifeboat.force=1 lifeboat.done=reboot`,
			Job{Action: ActionRestore, Image: "LABEL=MY IMAGES:/a b.lbi", Target: "serial=WD-1", Partition: 2, Force: true, Done: DoneReboot}, ""},
		{"lifeboat.action=restore lifeboat.target=/dev/sda", Job{}, "needs lifeboat.image"},
		{"lifeboat.action=restore lifeboat.image=/mnt/x.lbi", Job{}, "needs lifeboat.target"},
		{"lifeboat.action=format", Job{}, "use restore"},
		{"lifeboat.taget=/dev/sda", Job{}, "unknown kernel parameter lifeboat.taget"},
		{"lifeboat.partition=0", Job{}, "from 1"},
		{"lifeboat.done=halt", Job{}, "poweroff, reboot or shell"},
		{"lifeboat.report=ftp://x", Job{}, "http:// URL"},
		{"console=ttyS0 lifeboat.ui=prompt", Job{UI: UIPrompt}, ""},
		{"lifeboat.ui=tui", Job{UI: UITUI}, ""},
		{"lifeboat.ui=gui", Job{}, "tui or prompt"},
		{"lifeboat.require-encrypted=1", Job{RequireEncrypted: true}, ""},
		{"lifeboat.netwait=20", Job{NetWait: 20 * time.Second}, ""},
		{"lifeboat.netwait=0", Job{}, "1 to 3600"},
		{"lifeboat.netwait=2m", Job{}, "1 to 3600"},
		{"lifeboat.layout=fit", Job{Layout: layout.Fit}, ""},
		{"lifeboat.action=restore lifeboat.image=s3://backups/pc1.lbi lifeboat.s3-endpoint=http://10.0.2.2:7070 lifeboat.credentials=LABEL=KEYS:/s3.cred lifeboat.target=first-empty-disk",
			Job{Action: ActionRestore, Image: "s3://backups/pc1.lbi", S3Endpoint: "http://10.0.2.2:7070", Credentials: "LABEL=KEYS:/s3.cred", Target: "first-empty-disk"}, ""},
		{"lifeboat.s3-endpoint=nas:7070", Job{}, "use http(s)://HOST[:PORT]"},
		{"lifeboat.credentials=http://server/keys", Job{}, "a file on a disk"},
		{"lifeboat.credentials=http://192.168.77.1/api/credentials/52:54:00:12:34:56?token=ab12", Job{Credentials: "http://192.168.77.1/api/credentials/52:54:00:12:34:56?token=ab12"}, ""},
		{"lifeboat.layout=FILL", Job{Layout: layout.Fill}, ""},
		{"lifeboat.layout=keep", Job{}, ""},
		{"lifeboat.layout=manual", Job{}, "keep (as stored), fill"},
		{"lifeboat.layout=shrink", Job{}, "or fit"},
	} {
		got, err := ParseCmdline(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseFileSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FileSpec
		err  string
	}{
		{"LABEL=IMAGES:/backups/pc1.lbi", FileSpec{"label", "IMAGES", "/backups/pc1.lbi"}, ""},
		{"UUID=1234-ABCD:/pc1.lbi", FileSpec{"uuid", "1234-ABCD", "/pc1.lbi"}, ""},
		{"/dev/sdb1:/pc1.lbi", FileSpec{"device", "/dev/sdb1", "/pc1.lbi"}, ""},
		{"/mnt/sdb1/pc1.lbi", FileSpec{"path", "", "/mnt/sdb1/pc1.lbi"}, ""},
		{"http://10.0.0.1/images/pc1.lbi", FileSpec{"url", "", "http://10.0.0.1/images/pc1.lbi"}, ""},
		{"LABEL=IMAGES", FileSpec{}, "LABEL=NAME:/path"},
		{"pc1.lbi", FileSpec{}, "absolute path"},
	} {
		got, err := ParseFileSpec(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v", tc.in, got, err)
		}
	}
}

// FuzzParseCmdline: the kernel command line comes from a boot menu or a
// PXE server; whatever it holds must not crash the rescue environment.
func FuzzParseCmdline(f *testing.F) {
	f.Add(`console=ttyS0 lifeboat.action=restore lifeboat.image="LABEL=A B:/x.lbi" lifeboat.target=first-empty-disk`)
	f.Add(`lifeboat.image=UUID=1:/a lifeboat.partition=3 lifeboat.done=shell "`)
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseCmdline(s)
		if err == nil && j.Action == ActionRestore && (j.Image == "" || j.Target == "") {
			t.Fatalf("accepted a restore without image or target: %+v", j)
		}
		if j.Image != "" {
			ParseFileSpec(j.Image)
		}
	})
}

// bytes= is what was written, not the size of the target; the Secure
// Boot state comes last.
func TestOKLine(t *testing.T) {
	got := okLine(ActionRestore, "/mnt/vda/pc1.lbi", "/dev/vdb", &engine.RestoreResult{Bytes: 50 << 20, Written: 7 << 20, Verified: true}, 4*time.Second,
		Platform{SecureBoot: SecureBootEnabled, Lockdown: "integrity"})
	want := "LIFEBOAT-RESULT status=ok exit=0 action=restore image=/mnt/vda/pc1.lbi target=/dev/vdb bytes=7340032 range=52428800 verified=true seconds=4.0 secureboot=1 lockdown=integrity"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// The reason stays last, so a reader can take it to the end of the line,
// and its double quotes cannot end it early.
func TestFailedLine(t *testing.T) {
	got := failedLine(engine.ExitNotFound, ActionRestore, "", Platform{SecureBoot: SecureBootNoUEFI}, `image "pc1.lbi": not found`)
	want := `LIFEBOAT-RESULT status=failed exit=6 action=restore target= secureboot=- lockdown=- reason="image 'pc1.lbi': not found"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// A job's own failures get their exit codes from engine.ExitCode and keep
// their wording.
func TestJobErrorExitCodes(t *testing.T) {
	cause := errors.New("no mounted filesystem has label IMAGES")
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"not found", notFound(cause), engine.ExitNotFound},
		{"refused", refused(cause), engine.ExitRefused},
		{"refused, wrapped", fmt.Errorf("job: %w", refused(cause)), engine.ExitRefused},
		{"cancelled while refused", refused(fmt.Errorf("wait: %w", context.Canceled)), engine.ExitCancelled},
		{"unclassed", cause, engine.ExitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := engine.ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode = %d, want %d", got, tt.want)
			}
			if !errors.Is(tt.err, cause) && !errors.Is(tt.err, context.Canceled) {
				t.Error("the cause is lost")
			}
		})
	}
	if got := refused(cause).Error(); got != cause.Error() {
		t.Errorf("refused(err) reads %q, want %q", got, cause.Error())
	}
}
