//go:build linux

package qemutests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-rescue/lifeboat/qemu-tests/qemu"
)

// pxeClient is one machine of a Secure Boot PXE test: its firmware, what
// its LIFEBOAT-READY line must say, the loader the server must give it,
// and files the server's log must show it fetched.
type pxeClient struct {
	name       string
	o          qemu.Options
	secureboot string // secureboot= in READY and in the server's status
	loader     string // the server's status: what it booted first
	// fetched are files the server's log must show it sending the client;
	// script, the log line of the per-client boot configuration.
	fetched []string
	script  string
}

// secureBootClients are a UEFI client with Secure Boot enforced and
// Microsoft's keys (the factory state of a PC), whose firmware's own PXE
// stack boots (no iPXE option ROM, which it would refuse unsigned), a UEFI
// client with Secure Boot off (the server cannot tell them apart: both get
// shim), and a BIOS client.
func secureBootClients() []pxeClient {
	return []pxeClient{
		{name: "uefi-secureboot", o: qemu.Options{Firmware: qemu.UEFISecureBoot, NoNICROM: true, MemoryMB: sbMemoryMB},
			secureboot: "1", loader: "shim+grub", fetched: []string{"secureboot/shimx64.efi", "secureboot/grubx64.efi", "grub/grub.cfg", "rescue/vmlinuz", "rescue/initramfs"},
			script: `msg="tftp: grub config"`},
		// UEFI with Secure Boot off, firmware PXE: the same chain.
		{name: "uefi", o: qemu.Options{Firmware: qemu.UEFIPflash, Machine: "q35", NoNICROM: true, MemoryMB: sbMemoryMB},
			secureboot: "0", loader: "shim+grub", fetched: []string{"secureboot/shimx64.efi", "secureboot/grubx64.efi", "rescue/initramfs"},
			script: `msg="tftp: grub config"`},
		// UEFI HTTP boot with Secure Boot: the chain by URL, all of it
		// over HTTP (the firmware shim, shim GRUB, GRUB its
		// configuration, kernel and initramfs).
		{name: "uefi-http-secureboot", o: qemu.Options{Firmware: qemu.UEFISecureBoot, NoNICROM: true, HTTPBoot: true, MemoryMB: sbMemoryMB},
			secureboot: "1", loader: "shim+grub", fetched: []string{"secureboot/shimx64.efi", "secureboot/grubx64.efi", "grub/grub.cfg", "rescue/vmlinuz", "rescue/initramfs"},
			script: `msg="http: grub config"`},
		// QEMU's NIC ROM is iPXE: the BIOS client asks for the script
		// straight away.
		{name: "bios", o: qemu.Options{Firmware: qemu.BIOS, MemoryMB: sbMemoryMB},
			secureboot: "-", loader: "ipxe", fetched: []string{"rescue/vmlinuz", "rescue/initramfs"},
			script: `msg="http: boot script"`},
	}
}

// A Secure Boot UEFI client PXE-boots from lifeboat pxe serve through
// shim and Debian's signed network GRUB into the Debian-signed kernel,
// and restores by rule; so does a UEFI client with Secure Boot off; a
// BIOS client on the same server still gets iPXE and restores too. The guests say how they booted (secureboot=1 in
// LIFEBOAT-READY and the kernel locked down; secureboot=- for BIOS), so
// the test proves the state rather than assumes it.
func TestPXESecureBoot(t *testing.T) {
	dir, src, imgs, rules := restoreFixture(t, "http://{server}/images/pc1.lbi")
	l := newLab(t, 4)
	log := l.serve(t, "--images", imgs, "--rules", rules)
	secureBootRestore(t, l, log, dir, src, secureBootClients())
}

// Proxy mode: an ordinary DHCP server (dnsmasq in a second namespace, the
// "router") hands out the addresses and names itself as next-server, as a
// home router does; ours only tells PXE clients what to boot, with its
// defaults (--uefi-loader auto gives shim). Shim takes its boot file from
// our proxy offer, and so does Debian's signed network GRUB 2.12 (2.06
// looked only at the router's next-server and stopped).
func TestPXESecureBootProxy(t *testing.T) {
	dir, src, imgs, rules := restoreFixture(t, "http://{server}/images/pc1.lbi")
	l := newLab(t, 1)
	router := l.router(t, "--port=0")
	log := l.serve(t, "--proxy", "--images", imgs, "--rules", rules)
	secureBootRestore(t, l, log, dir, src, secureBootClients()[:1])
	if !strings.Contains(router.String(), "DHCPACK") {
		t.Errorf("the ordinary DHCP server acked nothing")
	}
	if !strings.Contains(router.String(), "next server: 192.168.77.2") {
		t.Errorf("the router did not name itself as next-server, so the test proves nothing about GRUB following the proxy")
	}
}

// secureBootRestore boots the clients side by side on the lab's taps,
// checks each one's READY line, result and disk, and then the server's
// log and status.
func secureBootRestore(t *testing.T, l *lab, log *syncBuffer, dir, src string, clients []pxeClient) {
	want, _ := os.ReadFile(src)
	var wg sync.WaitGroup
	for i, c := range clients {
		target := sparse(t, filepath.Join(dir, fmt.Sprintf("target%d.img", i)), 64<<20)
		c.o.Disks = []qemu.Disk{{Path: target, Bus: qemu.Virtio, Serial: fmt.Sprintf("T%d", i)}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			vm := l.bootWith(t, i, c.o)
			m, err := vm.Expect(`LIFEBOAT-READY .* secureboot=(\S+) lockdown=(\S+)`, 6*time.Minute)
			if err != nil {
				t.Errorf("%s client: %v", c.name, err)
				return
			}
			t.Logf("%s client: power-on to LIFEBOAT-READY over PXE %.1f s (secureboot=%s lockdown=%s)", c.name, time.Since(start).Seconds(), m[1], m[2])
			if m[1] != c.secureboot {
				t.Errorf("%s client: LIFEBOAT-READY says secureboot=%s, want %s", c.name, m[1], c.secureboot)
			}
			if c.secureboot == "1" && m[2] != "integrity" {
				t.Errorf("%s client: lockdown=%s under Secure Boot, want integrity (Debian's kernel locks down when Secure Boot is on)", c.name, m[2])
			}
			r, err := vm.Expect(`LIFEBOAT-RESULT status=(\w+).*`, 2*time.Minute)
			if err != nil || r[1] != "ok" {
				t.Errorf("%s client: %v %v", c.name, r, err)
				return
			}
			if !strings.Contains(r[0], " secureboot="+c.secureboot+" ") {
				t.Errorf("%s client: the result line does not carry secureboot=%s: %s", c.name, c.secureboot, r[0])
			}
			if err := vm.Wait(time.Minute); err != nil {
				t.Errorf("%s client did not power off: %v", c.name, err)
			}
			got, _ := os.ReadFile(target)
			if !bytes.Equal(got[:len(want)], want) {
				t.Errorf("%s client's disk does not hold the image", c.name)
			}
		}()
	}
	wg.Wait()
	var st []struct{ MAC, Stage, Result, Loader, SecureBoot string }
	statusJSON(t, l, &st)
	for i, c := range clients {
		found := false
		for _, s := range st {
			if s.MAC != clientMAC(i) {
				continue
			}
			found = true
			if s.Stage != "done" || s.Loader != c.loader || s.SecureBoot != c.secureboot {
				t.Errorf("the server has %s client %s at stage %q, loader %q, secureboot %q; want done, %s, %s", c.name, s.MAC, s.Stage, s.Loader, s.SecureBoot, c.loader, c.secureboot)
			}
		}
		if !found {
			t.Errorf("the server has no status for %s client %s", c.name, clientMAC(i))
		}
		if !regexp.MustCompile(regexp.QuoteMeta(c.script) + ` mac=` + clientMAC(i)).MatchString(log.String()) {
			t.Errorf("the server's log does not show %s client %s getting its configuration (%s)", c.name, clientMAC(i), c.script)
		}
		for _, f := range c.fetched {
			if !regexp.MustCompile(`mac=` + clientMAC(i) + `.*file=` + regexp.QuoteMeta(f)).MatchString(log.String()) {
				t.Errorf("the server's log does not show %s client %s fetching %s", c.name, clientMAC(i), f)
			}
		}
	}
}
