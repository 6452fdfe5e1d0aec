package images

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// memAvailableBytes reads MemAvailable from /proc/meminfo: what the kernel
// can give without swapping.
func memAvailableBytes() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	return parseMemAvailable(b)
}

// parseMemAvailable finds "MemAvailable:  123456 kB" in /proc/meminfo.
func parseMemAvailable(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "MemAvailable:" {
			kib, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil || kib < 0 {
				break
			}
			return kib << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemAvailable line (a kernel before 3.14?)")
}
