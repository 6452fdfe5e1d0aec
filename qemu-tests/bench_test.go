//go:build linux

package qemutests

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// BenchmarkRescueBoot boots the rescue environment to its ready marker in
// 256 MB and reports, per boot: host wall time, the guest's own clock when
// our init started and when it was ready, and the bundle's sizes. Run with
// -benchtime 3x (make bench-rescue) for a median-of-3 view.
func BenchmarkRescueBoot(b *testing.B) {
	dir := rescueBundle(b)
	accel := "tcg"
	if qemu.KVMUsable(b.Context()) {
		accel = "kvm"
	}
	b.Logf("accelerator: %s", accel)
	var wall, kernelToInit, initToReady []float64
	for b.Loop() {
		start := time.Now()
		vm := boot(b, "", nil, qemu.NetNone)
		m, err := vm.Expect(`LIFEBOAT-READY .*uptime_start=([\d.]+) uptime_ready=([\d.]+)`, bootTimeout)
		if err != nil {
			b.Fatal(err)
		}
		wall = append(wall, time.Since(start).Seconds())
		s, _ := strconv.ParseFloat(m[1], 64)
		r, _ := strconv.ParseFloat(m[2], 64)
		kernelToInit = append(kernelToInit, s)
		initToReady = append(initToReady, r-s)
		vm.Kill()
	}
	b.ReportMetric(median(wall), "wall-s/boot")
	b.ReportMetric(median(kernelToInit), "guest-kernel-to-init-s")
	b.ReportMetric(median(initToReady), "guest-init-to-ready-s")
	b.ReportMetric(256, "MB-RAM")
	for _, f := range []string{"vmlinuz", "initramfs"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Size())/1e6, f+"-MB")
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
