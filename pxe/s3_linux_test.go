package pxe

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/internal/fstest"
)

// TestHTTPImagesFromS3: pxe serve --images s3://BUCKET/PREFIX/ serves the
// objects there as files under images/, with ranges, from a real S3
// server (versitygw, whose posix backend keeps objects as files); and
// --images smb://SERVER/SHARE/FOLDER from Debian's Samba.
func TestHTTPImagesFromS3(t *testing.T) {
	root := filepath.Join(t.TempDir(), "s3")
	os.MkdirAll(filepath.Join(root, "backups", "room1"), 0o755)
	img := make([]byte, 9<<20+12345) // more than two read windows
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img {
		img[i] = byte(r.IntN(256))
	}
	os.WriteFile(filepath.Join(root, "backups", "room1", "pc1.lbi"), img, 0o644)
	s3 := fstest.StartS3(t, root)
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	rules, _ := ParseRules([]byte(exampleRules))
	s := offlineServer(t, Config{Rules: rules, Images: "s3://backups/room1/", HTTPPort: 8080, Log: testLogger(t)})
	h := httpServer(t, s)

	code, b := get(t, h.URL+"/images/pc1.lbi")
	if code != 200 || !bytes.Equal(b, img) {
		t.Fatalf("whole object: %d, %d bytes", code, len(b))
	}
	for _, rg := range [][2]int{{0, 99}, {4<<20 - 10, 4<<20 + 10}, {len(img) - 5, len(img) - 1}, {123456, 8<<20 + 7}} {
		code, b := get(t, h.URL+"/images/pc1.lbi", "Range", "bytes="+itoa(rg[0])+"-"+itoa(rg[1]))
		if code != http.StatusPartialContent || !bytes.Equal(b, img[rg[0]:rg[1]+1]) {
			t.Errorf("range %v: %d, %d bytes", rg, code, len(b))
		}
	}
	if code, _ := get(t, h.URL+"/images/none.lbi"); code != 404 {
		t.Errorf("missing object: %d", code)
	}
	for _, p := range []string{"/images/.hidden", "/images/a/../../x"} {
		if code, _ := get(t, h.URL+p); code != 403 && code != 404 {
			t.Errorf("%s: %d", p, code)
		}
	}
	// The same from a folder of an SMB share.
	smb := fstest.StartSMB(t, filepath.Join(t.TempDir(), "smb"))
	t.Setenv("LIFEBOAT_SMB_CREDENTIALS", smb.CredentialsFile(smb.Password))
	os.MkdirAll(filepath.Join(smb.Share, "room2"), 0o755)
	os.WriteFile(filepath.Join(smb.Share, "room2", "pc2.lbi"), img, 0o644)
	s2 := offlineServer(t, Config{Rules: rules, Images: "smb://" + smb.Addr + "/backups/room2", HTTPPort: 8080, Log: testLogger(t)})
	h2 := httpServer(t, s2)
	if code, b := get(t, h2.URL+"/images/pc2.lbi", "Range", "bytes=5000000-5999999"); code != http.StatusPartialContent || !bytes.Equal(b, img[5000000:6000000]) {
		t.Errorf("SMB range: %d, %d bytes", code, len(b))
	}

	// A bucket that does not exist is refused when the server starts.
	bundle, ipxeDir, _ := testBundle(t)
	c := Config{Rules: rules, Images: "s3://nobucket/", HTTPPort: 8080, Log: testLogger(t), Interface: "test0", Bundle: bundle, IPXEDir: ipxeDir,
		LeaseFile: filepath.Join(t.TempDir(), "leases.json")}
	if _, err := newServer(c, netip.MustParsePrefix("192.168.77.1/24")); err == nil || !strings.Contains(err.Error(), "nobucket") {
		t.Errorf("missing bucket: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
