package engine

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// TestPartReceived: a part counts as stored only when the server's echo
// of its CRC-32C, or without one its MD5 ETag, matches what was sent.
// (The real server's side is TestS3Images in cmd/lifeboat.)
func TestPartReceived(t *testing.T) {
	data := []byte("a part of an image")
	sum := md5.Sum(data)
	etag := hex.EncodeToString(sum[:])
	const crc = "AAAAAA=="
	for _, c := range []struct {
		name string
		p    minio.ObjectPart
		bad  string
	}{
		{"crc echoed", minio.ObjectPart{ChecksumCRC32C: crc, ETag: "whatever"}, ""},
		{"other crc", minio.ObjectPart{ChecksumCRC32C: "BBBBBB==", ETag: etag}, "CRC-32C"},
		{"md5 etag", minio.ObjectPart{ETag: `"` + strings.ToUpper(etag) + `"`}, ""},
		{"other md5", minio.ObjectPart{ETag: strings.Repeat("0", 32)}, "MD5"},
		{"encrypted etag", minio.ObjectPart{ETag: "opaque-etag-of-sse"}, ""},
	} {
		err := partReceived(c.p, crc, data)
		if (err != nil) != (c.bad != "") || (err != nil && !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.bad)
		}
	}
}
