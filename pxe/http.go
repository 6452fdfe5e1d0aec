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
	"os"
	"strconv"
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
	mux.HandleFunc("GET /"+secureBootDir+"/{name...}", s.serveFile(fromFiles(s.files.openSecureBoot), secureBootDir+"/"))
	mux.HandleFunc("GET /"+grubCfgPrefixName+"/{name...}", s.serveGRUB)
	if s.files.remote != nil {
		mux.HandleFunc("GET /images/{name...}", s.serveFile(s.files.remote.open, "images/"))
	} else {
		mux.HandleFunc("GET /images/{name...}", s.serveTree(func() *tree { return s.files.images }, "images/"))
	}
	mux.HandleFunc("POST /api/report/{mac}", s.serveReport)
	mux.HandleFunc("GET /api/credentials/{mac}", s.serveCredentials)
	mux.HandleFunc("GET /api/status", s.serveStatus)
	return stallGuard(oneSlash(mux), s.c.StallTimeout)
}

// oneSlash collapses repeated slashes in request paths before the mux
// sees them: shim loaded over HTTP asks for the next loader at its own
// URL's folder plus "/grubx64.efi" (http://SERVER/secureboot//grubx64.efi),
// and the mux would answer such a path with a redirect, which shim does
// not follow. Names are checked as before (cleanName) after this.
func oneSlash(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "//") {
			p := r.URL.Path
			for strings.Contains(p, "//") {
				p = strings.ReplaceAll(p, "//", "/")
			}
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path, u.RawPath = p, ""
			r2.URL = &u
			r = r2
		}
		h.ServeHTTP(w, r)
	})
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
//
// A script with a job (rule arguments) goes only to the client itself,
// with a new report token; anyone else asking for it gets 403.
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
	var token string
	if s.ruleArgs(hw) != "" {
		if ok, _ := s.isClient(mac, ip); !ok {
			s.warnEvery("script", "http: boot script with a job refused: the request came from an address that is not the address of that client; only the client itself gets its job (and report token)", "mac", mac, "ip", ip)
			http.Error(w, "this address does not belong to "+mac+"; a job is sent only to the client itself", http.StatusForbidden)
			return
		}
		token = newToken()
	}
	script, args := s.script(hw, token)
	io.WriteString(w, script)
	s.clients.boot(mac, ip, token, "boot.ipxe")
	s.log.Info("http: boot script", "mac", mac, "ip", ip, "args", args)
}

// ruleArgs are the kernel arguments of the rule that matches hw, as
// written; "" when no rule gives any.
func (s *Server) ruleArgs(hw net.HardwareAddr) string {
	if rule, ok := s.c.Rules.Match(hw); ok {
		return strings.TrimSpace(rule.Args)
	}
	return ""
}

// script is the iPXE script for one client, and the job's arguments as
// they may be logged (with "{token}" standing for the token).
func (s *Server) script(hw net.HardwareAddr, token string) (string, string) {
	cmdline, args := s.cmdline(hw, token)
	server := s.c.hostPort()
	return fmt.Sprintf(`#!ipxe
echo Lifeboat: booting the rescue environment for %s
kernel http://%s/rescue/vmlinuz initrd=initramfs %s
initrd http://%s/rescue/initramfs
boot
`, hw, server, cmdline, server), args
}

// cmdline is the rescue kernel's command line for one client (the
// bundle's, then the job's arguments), and the job's arguments as they
// may be logged (with "{token}" standing for the token). With a job, the
// default report URL carries the token; so does {token} in the rule.
func (s *Server) cmdline(hw net.HardwareAddr, token string) (string, string) {
	mac := hw.String()
	args := s.ruleArgs(hw)
	if args != "" && !strings.Contains(args, "lifeboat.report=") {
		args += " lifeboat.report=http://{server}/api/report/{mac}?token={token}"
	}
	if rule, ok := s.c.Rules.Match(hw); ok && rule.Credentials != "" && args != "" {
		args += " lifeboat.credentials=http://{server}/api/credentials/{mac}?token={token}"
	}
	args = strings.NewReplacer("{server}", s.c.hostPort(), "{mac}", mac).Replace(args)
	return strings.TrimSpace(s.info.Cmdline + " " + strings.ReplaceAll(args, "{token}", token)), args
}

// isClient says whether a request from ip comes from the machine with MAC
// address mac, and how the server knows. On the served subnet the
// kernel's neighbour (ARP) table decides: it holds the MAC address that
// ip's packets came from, which no DHCP message can rewrite. Elsewhere
// (or without an entry) the full-mode lease or the ciaddr of the client's
// last port-4011 request must name ip.
func (s *Server) isClient(mac string, ip netip.Addr) (bool, string) {
	if s.neigh != nil && s.prefix.Contains(ip) {
		if hw, err := s.neigh.lookup(ip); err == nil && hw != nil {
			return hw.String() == mac, "neighbour table"
		}
	}
	if s.leases != nil && s.leases.ackedIP(mac) == ip {
		return true, "lease"
	}
	if s.clients.pxeIP(mac) == ip {
		return true, "port 4011 request"
	}
	return false, ""
}

// serveTree serves files read-only from one directory, with range
// requests; traversal, dotfiles and symlinks that leave it are refused.
func (s *Server) serveTree(t func() *tree, prefix string) http.HandlerFunc {
	return s.serveFile(fromFiles(func(name string) (*os.File, fs.FileInfo, error) { return t().open(name) }), prefix)
}

// fromFiles adapts an opener of files to serveFile.
func fromFiles(open func(name string) (*os.File, fs.FileInfo, error)) func(string) (servedFile, fs.FileInfo, error) {
	return func(name string) (servedFile, fs.FileInfo, error) {
		f, st, err := open(name)
		if err != nil {
			return nil, nil, err
		}
		return f, st, nil
	}
}

// servedFile is what serveFile sends: a file, or an object of the image
// store read in ranges.
type servedFile interface {
	io.ReadSeeker
	io.Closer
}

// serveFile serves the files open finds by name, with range requests.
func (s *Server) serveFile(open func(name string) (servedFile, fs.FileInfo, error), prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		ip := remoteIP(r)
		mac := s.clients.macOf(ip)
		f, st, err := open(name)
		if err != nil {
			s.httpRefused(w, r, mac, ip, err)
			return
		}
		defer f.Close()
		if mac != "" {
			s.clients.update(mac, ip, "", stageOf(prefix+name), "http "+prefix+name)
		}
		start := time.Now()
		cw := &countingWriter{ResponseWriter: w}
		http.ServeContent(cw, r, st.Name(), st.ModTime(), f)
		attrs := []any{"mac", mac, "ip", ip, "file", clean(prefix+name, maxText), "bytes", cw.n, "duration", time.Since(start).Round(time.Millisecond)}
		if rg := r.Header.Get("Range"); rg != "" {
			attrs = append(attrs, "range", clean(rg, 100))
			s.log.Debug("http: sent", attrs...) // images are read in many ranges
		} else {
			s.log.Info("http: sent", attrs...)
		}
		if mac != "" && cw.n == st.Size() {
			s.clients.update(mac, ip, "", stageAfter(prefix+name), "http sent "+prefix+name)
		}
	}
}

// httpRefused answers a request for a file that is not served: 403 for
// names that try to leave the served directories (and the log says so),
// 404 otherwise.
func (s *Server) httpRefused(w http.ResponseWriter, r *http.Request, mac string, ip netip.Addr, err error) {
	code := http.StatusNotFound
	if errors.Is(err, errRefused) || errors.Is(err, errNotTheClient) {
		code = http.StatusForbidden
		s.warnEvery("refused", "http: refused", "mac", mac, "ip", ip, "path", clean(r.URL.Path, maxText), "err", clean(err.Error(), maxText))
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("http: not served", "mac", mac, "ip", ip, "path", clean(r.URL.Path, maxText), "err", clean(err.Error(), maxText))
	}
	http.Error(w, http.StatusText(code), code)
}

// serveGRUB answers GRUB's requests under its prefix when it booted over
// HTTP (UEFI HTTP boot): the same configurations as over TFTP.
func (s *Server) serveGRUB(w http.ResponseWriter, r *http.Request) {
	ip := remoteIP(r)
	name := r.PathValue("name")
	cfg, args, err := s.grubConfig(name, ip)
	if err != nil {
		s.httpRefused(w, r, s.clients.macOf(ip), ip, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, cfg)
	// As over TFTP: which configuration, and the job it carried.
	log := s.log.With("mac", s.clients.macOf(ip), "ip", ip, "file", clean(grubCfgPrefixName+"/"+name, maxText))
	if args != "" {
		log.Info("http: grub config", "args", args)
	}
	log.Info("http: sent", "bytes", len(cfg))
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

// serveReport stores the LIFEBOAT-RESULT line a rescue environment posts
// to /api/report/MAC?token=T; T must be the token of MAC's current boot.
func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) {
	hw, err := net.ParseMAC(r.PathValue("mac"))
	if err != nil || len(hw) != 6 {
		http.Error(w, "not a MAC address", http.StatusBadRequest)
		return
	}
	mac := hw.String()
	ip := remoteIP(r)
	token := r.URL.Query().Get("token")
	if !s.clients.validToken(mac, token) {
		s.refuseReport(w, mac, ip)
		return
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.c.BodyTimeout))
	var line string
	sc := bufio.NewScanner(http.MaxBytesReader(w, r.Body, maxReport))
	sc.Buffer(make([]byte, 4096), maxReport)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if i := strings.Index(l, "LIFEBOAT-RESULT"); i >= 0 {
			line = l[i:]
			break
		}
		if line == "" {
			line = l
		}
	}
	line = clean(line, maxText)
	if line == "" {
		http.Error(w, "empty report: post the LIFEBOAT-RESULT line", http.StatusBadRequest)
		return
	}
	st := StageFailed
	if strings.Contains(line, " status=ok") {
		st = StageDone
	}
	if !s.clients.report(mac, token, ip, line, st) {
		s.refuseReport(w, mac, ip) // a new boot came in between
		return
	}
	level := slog.LevelInfo
	if st == StageFailed {
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "job result", "mac", mac, "ip", ip, "result", line)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) refuseReport(w http.ResponseWriter, mac string, ip netip.Addr) {
	s.warnEvery("report", "http: report refused: it does not carry the token of that client's current boot (a forged report, or one from an earlier boot)", "mac", mac, "ip", ip)
	http.Error(w, "report refused: post to the lifeboat.report URL of this boot, token included", http.StatusForbidden)
}

// serveStatus writes the status table as a JSON array, one entry at a
// time; ?offset=N&limit=M selects a page (in MAC address order).
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	num := func(name string, def int) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		return n, err == nil && n >= 0
	}
	offset, ok1 := num("offset", 0)
	limit, ok2 := num("limit", s.c.MaxClients)
	if !ok1 || !ok2 {
		http.Error(w, "offset and limit must be numbers from 0", http.StatusBadRequest)
		return
	}
	cs := s.Clients()
	cs = cs[min(offset, len(cs)):]
	cs = cs[:min(limit, len(cs))]
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriter(w)
	bw.WriteString("[")
	for i, c := range cs {
		b, err := json.MarshalIndent(c, "  ", "  ")
		if err != nil {
			return
		}
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n  ")
		bw.Write(b)
	}
	bw.WriteString("\n]\n")
	bw.Flush()
}

// maxCredentials bounds a credentials file: a few keys, not a disk.
const maxCredentials = 64 << 10

// readCredentials reads a rule's credentials file: a regular file of at
// most 64 KiB that this process can read. The server reads it once at
// start to refuse a rule it could not serve, and again for each client,
// so a changed file needs no restart.
func readCredentials(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return nil, fmt.Errorf("credentials: %w", err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("credentials %s: not a regular file", name)
	case st.Size() > maxCredentials:
		return nil, fmt.Errorf("credentials %s: %d bytes; a credentials file holds a few keys (at most 64 KiB)", name, st.Size())
	}
	return io.ReadAll(io.LimitReader(f, maxCredentials))
}

// serveCredentials hands a rule's credentials file to the client of the
// rule: only with its current boot's token, only from its own address,
// and only once per boot (the rescue environment keeps the keys in a
// file in memory). The keys never reach the log.
func (s *Server) serveCredentials(w http.ResponseWriter, r *http.Request) {
	hw, err := net.ParseMAC(r.PathValue("mac"))
	if err != nil || len(hw) != 6 {
		http.Error(w, "not a MAC address", http.StatusBadRequest)
		return
	}
	mac, ip := hw.String(), remoteIP(r)
	rule, ok := s.c.Rules.Match(hw)
	from, _ := s.isClient(mac, ip)
	if !ok || rule.Credentials == "" || !from || !s.clients.takeCredentials(mac, r.URL.Query().Get("token")) {
		s.warnEvery("credentials", "http: credentials refused: only the client itself, with its current boot's token, gets them, once per boot", "mac", mac, "ip", ip)
		http.Error(w, "credentials refused: they are handed once per boot to the client itself, through the lifeboat.credentials URL of its boot", http.StatusForbidden)
		return
	}
	b, err := readCredentials(rule.Credentials)
	if err != nil {
		s.log.Error("http: credentials file unreadable", "mac", mac, "file", rule.Credentials, "err", err)
		http.Error(w, "the server cannot read the credentials file of this client's rule", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
	s.log.Info("http: credentials sent", "mac", mac, "ip", ip, "file", rule.Credentials)
}
