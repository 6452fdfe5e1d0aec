package bench

import (
	"fmt"
	"strconv"
	"strings"
)

var binaryUnits = []struct {
	suffix string
	shift  uint
}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}, {"t", 40}, {"g", 30}, {"m", 20}, {"k", 10}}

// ParseSize parses a byte count: a whole number, optionally followed by K, M,
// G or T, optionally followed by "iB" — all binary units, so "2G" and "2GiB"
// are both 2×2³⁰ bytes, as in dd and truncate.
func ParseSize(s string) (int64, error) {
	num, shift := s, uint(0)
	for _, u := range binaryUnits {
		if n, ok := strings.CutSuffix(strings.TrimSuffix(s, "iB"), u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("size %q: want a positive whole number of bytes, optionally with K, M, G or T (binary units), like 2G or 512M", s)
	}
	return n << shift, nil
}

// sizeLabel names a size in file names: "2GiB", "512MiB", or "1000B".
func sizeLabel(n int64) string {
	for _, u := range binaryUnits[:4] {
		if n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%siB", n>>u.shift, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}
