package engine

import (
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"
)

// ParseSize reads a size as every front end takes it: a number with an
// optional binary suffix K, M, G or T (KiB, MiB, GiB, TiB; "G", "GB" and
// "GiB" all mean 2^30, as truncate -s and sfdisk take them), or plain
// bytes. go-humanize does the parsing; the suffix is made IEC first, so
// that "60G" is never read as 60×10^9.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	if n := len(t); n > 0 && strings.IndexByte("KMGT", t[n-1]) >= 0 {
		t += "iB"
	}
	v, err := humanize.ParseBytes(t)
	if err != nil || v == 0 || v > 1<<62 || strings.HasPrefix(strings.TrimSpace(s), "-") {
		return 0, fmt.Errorf("size %q: use a number with an optional K, M, G or T suffix (binary: G is GiB), e.g. 4G", s)
	}
	return int64(v), nil
}
