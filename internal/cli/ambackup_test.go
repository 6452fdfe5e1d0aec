package cli

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestTranslateAMBackup(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("device names here are Linux's")
	}
	disks := func() ([]string, error) { return []string{"/dev/sda", "/dev/nvme0n1"}, nil }
	for _, tc := range []struct {
		in    string
		want  []string // the command lines, joined by " | "
		notes string
	}{
		{"/c /t disk /s 0 /d 1", []string{"clone disk /dev/sda --target /dev/nvme0n1"}, ""},
		{"/C /T part /S 1:2 /D 0:3", []string{"clone part /dev/nvme0n1p2 --target /dev/sda3"}, ""},
		{"/c /t disk /s 0 /d 1 /a", []string{"clone disk /dev/sda --target /dev/nvme0n1"}, "aligns partitions"},
		{"/r /t disk /s D:\\img.lbi /d 1", []string{"restore D:\\img.lbi --target /dev/nvme0n1"}, ""},
		{"/r /t system /s /b/x.lbi /d /dev/sdz", []string{"restore /b/x.lbi --target /dev/sdz"}, ""},
		{"/b new /t disk /s 1 /d /b /e", []string{"task add Disk Backup --source disk:/dev/nvme0n1 --dest /b --scheme incremental --sector-by-sector", "task run Disk Backup --kind full"}, ""},
		{"/b /t system /d /b /n sys /k", []string{"task add sys --source system --dest /b --scheme incremental", "task run sys --kind full"}, "/k is not honoured"},
		{"/b dif /n pc1", []string{"task run pc1 --kind differential"}, ""},
		{"/b full /n pc1", []string{"task run pc1 --kind full"}, ""},
		{"/l0", []string{"disks"}, ""},
	} {
		argv, notes, err := translateAMBackup(strings.Fields(tc.in), disks)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		var got []string
		for _, a := range argv {
			got = append(got, strings.Join(a, " "))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if tc.notes != "" && !strings.Contains(strings.Join(notes, "\n"), tc.notes) {
			t.Errorf("%s: notes %q lack %q", tc.in, notes, tc.notes)
		}
	}
	for in, want := range map[string]string{
		"/c /t disk /s 0":                 "no source or target",
		"/c /t disk /s 5 /d 0":            "there is no disk 5",
		"/c /t disk /s 0:x /d 1":          "write DISK:PARTITION",
		"/b new /t disk /s 0":             "give the destination folder with /d",
		"/b weekly /n x":                  "/b weekly",
		"/b new /t disk /s":               "/s needs a value",
		"/b new /t disk /t part":          "/t given twice",
		"/b new /s 0 /d /b":               "give the type",
		"/b new /t disk /s 0 /d /b /m 10": "at least 50",
	} {
		if _, _, err := translateAMBackup(strings.Fields(in), disks); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
