package pxe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/rescue/bundle"
)

// Server is a running PXE server.
type Server struct {
	c         Config
	log       *slog.Logger
	prefix    netip.Prefix // the interface's subnet
	info      *bundle.Info
	files     files
	efiLoader string
	// shim: UEFI clients get the signed chain (shim, GRUB) instead of
	// efiLoader (Config.UEFILoader and the bundle decide).
	shim      bool
	leases    *leases // nil in proxy mode
	clients   *clients
	neigh     *neighbours // nil when the neighbour table cannot be read
	tftpLimit *tftpLimit
	transfers sync.WaitGroup // running TFTP handlers
	quiet     quietLog

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Serve runs the PXE server until ctx is cancelled, then returns ctx's
// error wrapped. Errors at start name the port or file and what to do.
func Serve(ctx context.Context, c Config) error {
	s, err := Start(ctx, c)
	if err != nil {
		return err
	}
	return s.Wait()
}

// newServer checks c and prepares everything that needs no network: the
// bundle, the served directories, the rules and the leases.
func newServer(c Config, p netip.Prefix) (*Server, error) {
	c, err := c.withDefaults(p)
	if err != nil {
		return nil, err
	}
	nofile := fileLimit()
	c = c.withLimits(nofile)
	s := &Server{c: c, log: c.Log, prefix: p.Masked(), clients: newClients(c.MaxClients), done: make(chan struct{}),
		tftpLimit: &tftpLimit{perClient: c.MaxTFTPPerClient, total: c.MaxTFTP, byIP: map[netip.Addr]int{}}}
	s.log.Debug("pxe: limits", "open-files", nofile, "http-conns", c.MaxConns, "http-conns-per-client", c.MaxConnsPerClient,
		"tftp-transfers", c.MaxTFTP, "tftp-transfers-per-client", c.MaxTFTPPerClient, "clients", c.MaxClients)
	if c.Rules != nil {
		for _, r := range c.Rules.Clients {
			if strings.Contains(r.Args, "/api/report/") && !strings.Contains(r.Args, "{token}") {
				s.log.Warn("rules: a lifeboat.report URL without ?token={token}: the server refuses its reports; add ?token={token} or leave lifeboat.report out", "line", r.Line)
			}
			if r.Credentials != "" {
				if _, err := readCredentials(r.Credentials); err != nil {
					return nil, fmt.Errorf("rules: line %d: %w", r.Line, err)
				}
			}
		}
	}
	s.info, err = bundle.Read(c.Bundle)
	if err != nil {
		return nil, err
	}
	if s.files.rescue, err = openTree(c.Bundle); err != nil {
		return nil, fmt.Errorf("rescue bundle: %w", err)
	}
	if engine.IsS3(c.Images) || engine.IsSMB(c.Images) {
		if err := engine.CheckFolder(context.Background(), c.Images); err != nil {
			s.close()
			return nil, fmt.Errorf("images: %w", err)
		}
		s.files.remote = newRemoteImages(c.Images)
	} else if c.Images != "" {
		if s.files.images, err = openTree(c.Images); err != nil {
			s.close()
			return nil, fmt.Errorf("images directory: %w; give an existing directory with --images", err)
		}
	}
	s.efiLoader = "snponly.efi"
	if t, err := openTree(c.IPXEDir); err != nil {
		s.log.Warn("iPXE boot loaders not found: firmware PXE clients cannot boot (clients whose network card runs iPXE still can); install them with apt-get install ipxe", "dir", c.IPXEDir, "err", err)
	} else {
		s.files.ipxe = t
		for _, n := range []string{"undionly.kpxe", "snponly.efi"} {
			if _, err := os.Stat(filepath.Join(c.IPXEDir, n)); err != nil {
				s.log.Warn("iPXE boot loader missing; install it with apt-get install ipxe", "file", filepath.Join(c.IPXEDir, n))
			}
		}
		if _, err := os.Stat(filepath.Join(c.IPXEDir, "snponly.efi")); err != nil {
			s.efiLoader = "ipxe.efi"
		}
	}
	if err := s.chooseUEFILoader(); err != nil {
		s.close()
		return nil, err
	}
	if !c.Proxy {
		ex := []netip.Addr{c.Addr}
		if c.Router.IsValid() {
			ex = append(ex, c.Router)
		}
		ex = append(ex, c.DNS...)
		if s.leases, err = openLeases(c.LeaseFile, c.Pool, ex...); err != nil {
			s.close()
			return nil, err
		}
		size := int(min(ipv4(c.Pool.Last)-ipv4(c.Pool.First), 1<<20)) + 1
		s.leases.maxOffers, s.leases.declineHold = max(min(c.MaxOffers, size/2), 1), c.DeclineHold
	}
	return s, nil
}

// chooseUEFILoader decides, from Config.UEFILoader and what the bundle
// holds, whether UEFI clients get the signed chain, and says so in the log.
func (s *Server) chooseUEFILoader() error {
	why := s.info.SecureBootCapable()
	if why == nil {
		var missing []string
		for _, n := range []string{bundleShim, bundleGRUBNet} {
			if f, _, err := s.files.rescue.open(n); err != nil {
				missing = append(missing, n)
			} else {
				f.Close()
			}
		}
		if len(missing) > 0 {
			why = fmt.Errorf("the bundle has no %s", strings.Join(missing, " or "))
		}
	}
	switch {
	case s.c.UEFILoader == UEFILoaderIPXE:
		s.log.Info("pxe: UEFI clients get iPXE (--uefi-loader ipxe); clients with Secure Boot on cannot boot it", "file", s.efiLoader)
	case why == nil:
		s.shim = true
		s.log.Info("pxe: UEFI clients get shim and Debian's signed network GRUB (boots with Secure Boot on or off)", "file", secureBootDir+"/shimx64.efi")
	case s.c.UEFILoader == UEFILoaderShim:
		return fmt.Errorf("UEFI loader shim: the rescue bundle %s cannot boot under Secure Boot: %v; rebuild it with make rescue (it fetches Debian's shim-signed and grub-efi-amd64-signed), or serve UEFI clients iPXE with --uefi-loader ipxe", s.c.Bundle, why)
	default:
		s.log.Warn("pxe: UEFI clients get iPXE: the rescue bundle cannot boot under Secure Boot, so clients with Secure Boot on cannot boot; rebuild the bundle with make rescue", "bundle", s.c.Bundle, "why", why.Error())
	}
	s.files.shim = s.shim
	return nil
}

func (s *Server) close() {
	s.neigh.close()
	s.files.ipxe.close()
	s.files.rescue.close()
	s.files.images.close()
}

// sockets are everything Start opens.
type sockets struct {
	dhcp, pxe net.PacketConn
	tftp      *net.UDPConn
	http      net.Listener
}

func (k *sockets) close() {
	if k.dhcp != nil {
		k.dhcp.Close()
	}
	if k.pxe != nil {
		k.pxe.Close()
	}
	if k.tftp != nil {
		k.tftp.Close()
	}
	if k.http != nil {
		k.http.Close()
	}
}

// Start opens every socket (in Config.Netns, or the calling thread's
// network namespace) and serves in the background until ctx is cancelled
// or Close is called; Wait returns why it stopped.
func Start(ctx context.Context, c Config) (*Server, error) {
	ns, err := openNetns(c.Netns)
	if err != nil {
		return nil, err
	}
	type started struct {
		s   *Server
		k   *sockets
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan started, 1)
	tftpDone := make(chan error, 1)
	// This goroutine owns the thread that sits in the namespace: it opens
	// the sockets and then runs the TFTP server, which opens one socket
	// per transfer.
	go func() {
		if err := ns.enter(); err != nil {
			ready <- started{err: err}
			return
		}
		p, err := interfaceAddr(c.Interface, c.Addr)
		if err != nil {
			ready <- started{err: err}
			return
		}
		s, err := newServer(c, p)
		if err != nil {
			ready <- started{err: err}
			return
		}
		k, err := s.listen()
		if err != nil {
			s.close()
			ready <- started{err: err}
			return
		}
		if s.neigh, err = openNeighbours(c.Interface); err != nil {
			s.log.Warn("pxe: the neighbour table cannot be read; job scripts go only to clients whose lease or port-4011 request names their address", "err", err)
		}
		t := s.newTFTP(ctx)
		ready <- started{s: s, k: k}
		go func() {
			<-ctx.Done()
			t.Shutdown()
		}()
		tftpDone <- t.Serve(k.tftp)
	}()
	st := <-ready
	ns.close()
	if st.err != nil {
		cancel()
		return nil, st.err
	}
	s, k := st.s, st.k
	s.cancel = cancel
	go s.run(ctx, k, tftpDone)
	return s, nil
}

// listen opens the sockets: DHCP on 67 and 4011 bound to the interface,
// TFTP and HTTP on the server's address.
func (s *Server) listen() (*sockets, error) {
	k := &sockets{}
	var err error
	if k.dhcp, err = listenDHCP(s.c.Interface, dhcpv4.ServerPort); err != nil {
		return nil, err
	}
	if k.pxe, err = listenDHCP(s.c.Interface, pxePort); err != nil {
		k.close()
		return nil, err
	}
	ta, err := net.ResolveUDPAddr("udp4", s.c.TFTPAddr)
	if err != nil {
		k.close()
		return nil, fmt.Errorf("TFTP address %s: %w", s.c.TFTPAddr, err)
	}
	// udp4, not udp: a dual-stack socket caps the block size at 1452.
	if k.tftp, err = net.ListenUDP("udp4", ta); err != nil {
		k.close()
		return nil, portError("UDP", ta.Port, s.c.Interface, "TFTP", "tftpd-hpa, dnsmasq", err)
	}
	ha := netip.AddrPortFrom(s.c.Addr, uint16(s.c.HTTPPort)).String()
	if k.http, err = net.Listen("tcp4", ha); err != nil {
		k.close()
		return nil, portError("TCP", s.c.HTTPPort, s.c.Interface, "HTTP", "a web server", err)
	}
	return k, nil
}

// portError explains a failed bind.
func portError(proto string, port int, iface, what, others string, err error) error {
	if isAddrInUse(err) {
		return fmt.Errorf("%s port %d on %s is already in use: another %s server (a second lifeboat pxe serve, %s) runs there; stop it first: %w", proto, port, iface, what, others, err)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s port %d on %s: %w; the PXE server needs root (or CAP_NET_BIND_SERVICE and CAP_NET_RAW)", proto, port, iface, err)
	}
	return fmt.Errorf("%s port %d on %s (%s): %w", proto, port, iface, what, err)
}

func (s *Server) run(ctx context.Context, k *sockets, tftpDone chan error) {
	defer close(s.done)
	defer s.close()
	// Every server runs in the group; the first to fail (or ctx's end)
	// stops them all, and Wait reports why.
	g, gctx := errgroup.WithContext(ctx)
	for _, l := range []struct {
		conn net.PacketConn
		port int
	}{{k.dhcp, dhcpv4.ServerPort}, {k.pxe, pxePort}} {
		srv, err := server4.NewServer(s.c.Interface, nil, func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
			r := s.handleDHCP(m, l.port)
			if r == nil {
				return
			}
			to := replyAddr(m, peer, l.port)
			if _, err := conn.WriteTo(r.ToBytes(), to); err != nil {
				s.log.Warn("dhcp: reply not sent", "mac", m.ClientHWAddr.String(), "to", to.String(), "err", err)
			}
		}, server4.WithConn(l.conn))
		if err != nil {
			g.Go(func() error { return fmt.Errorf("DHCP on %s port %d: %w", s.c.Interface, l.port, err) })
			continue
		}
		g.Go(func() error {
			err := srv.Serve()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("DHCP on %s port %d: %w", s.c.Interface, l.port, err)
		})
	}
	// No ReadTimeout and no WriteTimeout: both would cut long image
	// downloads. Reports set their own read deadline, and stallGuard ends
	// responses that stop moving.
	cl := newConnLimit(k.http, s.c.MaxConnsPerClient, s.c.MaxConns, func(ip netip.Addr, why string) {
		s.warnEvery("conns", "http: connection refused: "+why, "ip", ip)
	})
	hs := &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: s.c.HeaderTimeout,
		IdleTimeout:       s.c.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         cl.state,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	g.Go(func() error {
		if err := hs.Serve(cl); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP on %s: %w", k.http.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		err := <-tftpDone
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("TFTP on %s: stopped: %v", s.c.TFTPAddr, err)
	})
	// The stopper: when anything failed or ctx ended, close the rest.
	g.Go(func() error {
		<-gctx.Done()
		s.cancel() // stops TFTP (see Start)
		k.dhcp.Close()
		k.pxe.Close()
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		hs.Shutdown(sctx)
		hs.Close()
		return nil
	})
	s.log.Info("pxe: serving", "interface", s.c.Interface, "addr", s.c.Addr, "mode", s.mode(), "pool", s.c.Pool.String(),
		"http", "http://"+s.c.hostPort()+"/", "tftp", s.c.TFTPAddr, "bundle", s.c.Bundle, "images", s.c.Images, "leases", s.c.LeaseFile)

	s.err = g.Wait()
	if s.err == nil {
		s.err = fmt.Errorf("pxe server on %s: %w", s.c.Interface, context.Cause(ctx))
	}
	// TFTP transfers end at their next read of the file; one whose
	// client stopped acknowledging waits for pin/tftp's retries. Give
	// them a moment, then report stopped anyway (they log nothing more).
	transfersDone := make(chan struct{})
	go func() { s.transfers.Wait(); close(transfersDone) }()
	select {
	case <-transfersDone:
	case <-time.After(2 * time.Second):
	}
	s.log.Info("pxe: stopped", "interface", s.c.Interface)
}

func (s *Server) mode() string {
	if s.c.Proxy {
		return "proxy"
	}
	return "full"
}

// Wait blocks until the server stopped and returns why: ctx's error
// (wrapped) after cancellation or Close, or what failed.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// Config is the configuration with defaults filled in.
func (s *Server) Config() Config { return s.c }

// URL is the server's HTTP base URL, e.g. http://192.168.77.1/.
func (s *Server) URL() string { return "http://" + s.c.hostPort() + "/" }

// Clients returns what the server knows about each client, by MAC
// address. Any goroutine may call it at any time.
func (s *Server) Clients() []ClientStatus { return s.clients.list() }

// Leases returns the leases of a full-mode server (nil for a proxy).
func (s *Server) Leases() []Lease {
	if s.leases == nil {
		return nil
	}
	return s.leases.all()
}

// quietLog lets a warning that clients can provoke at will (refused
// connections, forged reports, a full pool) through at most once per
// interval per kind, and says how many it held back.
type quietLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

const quietInterval = 10 * time.Second

// warnEvery logs msg at most once per quietInterval for key (a fixed
// word, so the map stays small).
func (s *Server) warnEvery(key, msg string, args ...any) {
	q := &s.quiet
	q.mu.Lock()
	if q.last == nil {
		q.last, q.held = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(q.last[key]) < quietInterval {
		q.held[key]++
		q.mu.Unlock()
		return
	}
	held := q.held[key]
	q.last[key], q.held[key] = now, 0
	q.mu.Unlock()
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	s.log.Warn(msg, args...)
}
