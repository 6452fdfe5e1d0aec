package pxe

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// maxReport bounds a job report's body.
const maxReport = 64 << 10

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boot.ipxe", s.serveScript)
	mux.HandleFunc("GET /rescue/{name...}", s.serveTree(func() *tree { return s.files.rescue }, "rescue/"))
	mux.HandleFunc("GET /ipxe/{name...}", s.serveTree(func() *tree { return s.files.ipxe }, "ipxe/"))
	mux.HandleFunc("GET /images/{name...}", s.serveTree(func() *tree { return s.files.images }, "images/"))
	mux.HandleFunc("POST /api/report/{mac}", s.serveReport)
	mux.HandleFunc("GET /api/status", s.serveStatus)
	return mux
}

func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// serveScript answers /boot.ipxe?mac=MAC with the iPXE script for that
// client. Without ?mac (a boot file name set by hand, say) it finds the
// client by its address, and failing that asks iPXE to come back with its
// MAC address.
func (s *Server) serveScript(w http.ResponseWriter, r *http.Request) {
	ip := remoteIP(r)
	var hw net.HardwareAddr
	if m := r.URL.Query().Get("mac"); m != "" {
		var err error
		if hw, err = net.ParseMAC(m); err != nil || len(hw) != 6 {
			http.Error(w, "mac: not a MAC address", http.StatusBadRequest)
			return
		}
	} else if m := s.clients.macOf(ip); m != "" {
		hw, _ = net.ParseMAC(m)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if hw == nil {
		fmt.Fprintf(w, "#!ipxe\nchain http://%s/boot.ipxe?mac=${netX/mac}\n", s.c.hostPort())
		return
	}
	mac := hw.String()
	script, args := s.script(hw)
	io.WriteString(w, script)
	s.clients.update(mac, ip, "", StageScript, "boot.ipxe")
	s.log.Info("http: boot script", "mac", mac, "ip", ip, "args", args)
}

// script is the iPXE script for one client, and the rule's arguments.
func (s *Server) script(hw net.HardwareAddr) (string, string) {
	mac := hw.String()
	server := s.c.hostPort()
	expand := strings.NewReplacer("{server}", server, "{mac}", mac)
	var args string
	if rule, ok := s.c.Rules.Match(hw); ok && strings.TrimSpace(rule.Args) != "" {
		args = expand.Replace(strings.TrimSpace(rule.Args))
		if !strings.Contains(args, "lifeboat.report=") {
			args += " lifeboat.report=http://" + server + "/api/report/" + mac
		}
	}
	cmdline := strings.TrimSpace("initrd=initramfs " + s.info.Cmdline + " " + args)
	return fmt.Sprintf(`#!ipxe
echo Lifeboat: booting the rescue environment for %s
kernel http://%s/rescue/vmlinuz %s
initrd http://%s/rescue/initramfs
boot
`, mac, server, cmdline, server), args
}

// serveTree serves files read-only from one directory, with range
// requests; traversal, dotfiles and symlinks that leave it are refused.
func (s *Server) serveTree(t func() *tree, prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		ip := remoteIP(r)
		mac := s.clients.macOf(ip)
		f, st, err := t().open(name)
		if err != nil {
			code := http.StatusNotFound
			if errors.Is(err, errRefused) {
				code = http.StatusForbidden
				s.log.Warn("http: refused", "mac", mac, "ip", ip, "path", r.URL.Path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("http: not served", "mac", mac, "ip", ip, "path", r.URL.Path, "err", err)
			}
			http.Error(w, http.StatusText(code), code)
			return
		}
		defer f.Close()
		if mac != "" {
			s.clients.update(mac, ip, "", stageOf(prefix+name), "http "+prefix+name)
		}
		start := time.Now()
		cw := &countingWriter{ResponseWriter: w}
		http.ServeContent(cw, r, st.Name(), st.ModTime(), f)
		attrs := []any{"mac", mac, "ip", ip, "file", prefix + name, "bytes", cw.n, "duration", time.Since(start).Round(time.Millisecond)}
		if rg := r.Header.Get("Range"); rg != "" {
			attrs = append(attrs, "range", rg)
			s.log.Debug("http: sent", attrs...) // images are read in many ranges
		} else {
			s.log.Info("http: sent", attrs...)
		}
		if mac != "" && cw.n == st.Size() {
			s.clients.update(mac, ip, "", stageAfter(prefix+name), "http sent "+prefix+name)
		}
	}
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// serveReport stores the LIFEBOAT-RESULT line a rescue environment posts.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) {
	hw, err := net.ParseMAC(r.PathValue("mac"))
	if err != nil || len(hw) != 6 {
		http.Error(w, "not a MAC address", http.StatusBadRequest)
		return
	}
	mac := hw.String()
	var line string
	sc := bufio.NewScanner(io.LimitReader(r.Body, maxReport))
	sc.Buffer(make([]byte, 4096), maxReport)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.Contains(l, "LIFEBOAT-RESULT") {
			line = l[strings.Index(l, "LIFEBOAT-RESULT"):]
			break
		}
		if line == "" {
			line = l
		}
	}
	if line == "" {
		http.Error(w, "empty report: post the LIFEBOAT-RESULT line", http.StatusBadRequest)
		return
	}
	st := StageFailed
	if strings.Contains(line, " status=ok") {
		st = StageDone
	}
	ip := remoteIP(r)
	s.clients.update(mac, ip, "", st, line)
	s.clients.report(mac, line, st)
	level := slog.LevelInfo
	if st == StageFailed {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "job result", "mac", mac, "ip", ip, "result", line)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s.Clients())
}
