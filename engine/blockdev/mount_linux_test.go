package blockdev

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []mountEntry
	}{
		{
			name: "proc(5) example",
			in:   "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
			want: []mountEntry{{dev: unix.Mkdev(98, 0), mountPoint: "/mnt2", fsType: "ext3", source: "/dev/root"}},
		},
		{
			name: "no optional fields, escaped space, btrfs anonymous device",
			in: "22 27 0:21 / /proc rw,relatime - proc proc rw\n" +
				"90 27 0:45 /@home /media/My\\040Disk rw - btrfs /dev/sdb2 rw,subvol=/@home\n",
			want: []mountEntry{
				{dev: unix.Mkdev(0, 21), mountPoint: "/proc", fsType: "proc", source: "proc"},
				{dev: unix.Mkdev(0, 45), mountPoint: "/media/My Disk", fsType: "btrfs", source: "/dev/sdb2"},
			},
		},
		{
			name: "several optional fields, large minor",
			in:   "100 1 259:65536 / /boot rw shared:5 master:2 propagate_from:1 - vfat /dev/nvme0n1p1 rw\n",
			want: []mountEntry{{dev: unix.Mkdev(259, 65536), mountPoint: "/boot", fsType: "vfat", source: "/dev/nvme0n1p1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfo([]byte(tt.in))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseMountinfo = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"36 35 98:0 /mnt1 /mnt2 rw\n", "36 35 98x0 / /m rw - ext4 /dev/x rw\n", "1 2 3:4 / /m rw - ext4\n"} {
		if got, err := parseMountinfo([]byte(bad)); err == nil {
			t.Errorf("parseMountinfo(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:     "/a b",
		`/tab\011x`:   "/tab\tx",
		`/back\134`:   `/back\`,
		`/short\04`:   `/short\04`,
		`/notoct\999`: `/notoct\999`,
		`/plain`:      "/plain",
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseMountinfo checks that no mountinfo text makes the parser panic.
func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"))
	f.Add([]byte("90 27 0:45 /@home /media/My\\040Disk rw - btrfs /dev/sdb2 rw\n"))
	f.Add([]byte("1 2 3:4 / /m rw - ext4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mounts, err := parseMountinfo(b)
		if err != nil && mounts != nil {
			t.Errorf("parseMountinfo returned entries and error %v", err)
		}
	})
}
