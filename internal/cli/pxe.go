package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lifeboat-rescue/lifeboat/pxe"
)

type pxeFlags struct {
	iface, addr, bundle, ipxeDir, images, rules string
	uefiLoader                                  string
	pool, router, dns, leaseFile, tftpAddr      string
	proxy                                       bool
	leaseTime                                   time.Duration
	httpPort                                    int
	maxClients, maxConns, maxConnsPerClient     int
}

func pxeCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "pxe",
		Short: "Network-boot machines into the rescue environment",
	}
	c.AddCommand(pxeServeCmd(e))
	return c
}

func pxeServeCmd(e *env) *cobra.Command {
	var f pxeFlags
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve DHCP, TFTP and HTTP so that machines on an interface boot the rescue environment",
		Long: `Serve DHCP, TFTP and HTTP on one network interface so that machines there
boot the rescue environment over the network, and optionally run an
unattended job chosen per MAC address by a rules file.

Full mode (the default) is a DHCP server that leases addresses: use it only
on a network with no other DHCP server. With --proxy, an existing DHCP
server keeps handing out addresses and this one only tells PXE clients what
to boot.

BIOS clients get iPXE. UEFI clients get shim and Debian's signed network
GRUB when the bundle holds them (make rescue fetches them): that chain
boots with Secure Boot on or off, and the server cannot tell which a
client has. --uefi-loader ipxe gives UEFI clients iPXE instead (it starts
faster, but firmware with Secure Boot on refuses it). The same holds with
--proxy: the network GRUB finds this server from the proxy offer. UEFI HTTP
boot clients get the same chain by URL.

Rules file (--rules), first matching entry wins:

  clients:
    - mac: "52:54:00:12:34:56"
      args: "lifeboat.action=restore lifeboat.image=http://{server}/images/pc1.lbi lifeboat.target=first-empty-disk lifeboat.done=poweroff"
    - mac: "*"          # everyone else
      args: ""          # boot to the menu

A job goes only to the machine whose MAC address asks for it (checked
against the neighbour table, the lease or its PXE request), and its
result is accepted only with the report token of that boot: the default
lifeboat.report URL carries it; a rule's own lifeboat.report URL must
end in ?token={token}. Everything under --images is readable by anyone
on the segment, and a machine there that fakes another's MAC address
can still pose as it: run the server on an isolated or trusted network.`,
		Example: `  lifeboat pxe serve --interface eth1 --bundle out/rescue
  lifeboat pxe serve --interface eth1 --proxy --bundle out/rescue
  lifeboat pxe serve --interface eth1 --bundle out/rescue --images /srv/images --rules rules.yaml`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			return runPXE(c.Context(), e, cfg)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.iface, "interface", "i", "", "network interface the clients are on (required)")
	fl.StringVar(&f.addr, "addr", "", "server address on the interface (default: its first IPv4 address)")
	fl.BoolVar(&f.proxy, "proxy", false, "proxy DHCP: answer only PXE clients, hand out no addresses (beside an existing DHCP server)")
	fl.StringVar(&f.bundle, "bundle", "out/rescue", "rescue bundle directory (make rescue)")
	fl.StringVar(&f.ipxeDir, "ipxe-dir", pxe.DefaultIPXEDir, "directory with undionly.kpxe and snponly.efi (Debian package ipxe)")
	fl.StringVar(&f.uefiLoader, "uefi-loader", "auto", "what UEFI clients boot first: shim (then Debian's signed GRUB; boots with Secure Boot on), ipxe (unsigned: Secure Boot must be off), or auto (shim when the bundle holds it, except with --proxy)")
	fl.StringVar(&f.images, "images", "", "directory (or s3://BUCKET/PREFIX/, smb://SERVER/SHARE/FOLDER) served read-only at http://SERVER/images/")
	fl.StringVar(&f.rules, "rules", "", "YAML file choosing per MAC address what a client does")
	fl.StringVar(&f.pool, "pool", "", "addresses to lease, FIRST-LAST or a prefix (default: upper half of the subnet)")
	fl.StringVar(&f.router, "router", "", "default gateway to hand out (default: none)")
	fl.StringVar(&f.dns, "dns", "", "DNS servers to hand out, comma-separated (default: none)")
	fl.DurationVar(&f.leaseTime, "lease-time", time.Hour, "lease time")
	fl.StringVar(&f.leaseFile, "lease-file", "", "lease file (default /var/lib/lifeboat/leases-INTERFACE.json)")
	fl.IntVar(&f.httpPort, "http-port", 80, "HTTP port")
	fl.StringVar(&f.tftpAddr, "tftp-addr", "", "TFTP listening address (default SERVER:69)")
	fl.IntVar(&f.maxClients, "max-clients", pxe.DefaultMaxClients, "clients kept in the status table")
	fl.IntVar(&f.maxConns, "max-conns", 1024, "concurrent HTTP connections in all (lowered to fit the open-file limit)")
	fl.IntVar(&f.maxConnsPerClient, "max-conns-per-client", 16, "concurrent HTTP connections from one client address")
	return c
}

func (f *pxeFlags) config() (pxe.Config, error) {
	cfg := pxe.Config{
		Interface: f.iface, Proxy: f.proxy, Bundle: f.bundle, IPXEDir: f.ipxeDir, Images: f.images,
		LeaseTime: f.leaseTime, LeaseFile: f.leaseFile, HTTPPort: f.httpPort, TFTPAddr: f.tftpAddr,
		MaxClients: f.maxClients, MaxConns: f.maxConns, MaxConnsPerClient: f.maxConnsPerClient,
	}
	for _, l := range []struct {
		flag string
		v    int
	}{{"max-clients", f.maxClients}, {"max-conns", f.maxConns}, {"max-conns-per-client", f.maxConnsPerClient}} {
		if l.v < 1 {
			return cfg, usagef("--%s %d: give a number from 1", l.flag, l.v)
		}
	}
	var err error
	if cfg.UEFILoader, err = pxe.ParseUEFILoader(f.uefiLoader); err != nil {
		return cfg, usagef("--uefi-loader: %v", err)
	}
	if f.iface == "" {
		return cfg, usagef("--interface is required: name the network interface the clients are on, e.g. --interface eth1")
	}
	if f.httpPort <= 0 || f.httpPort > 65535 {
		return cfg, usagef("--http-port %d: use a port between 1 and 65535", f.httpPort)
	}
	parseAddr := func(flag, s string) (netip.Addr, error) {
		if s == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !a.Is4() {
			return a, usagef("--%s %q: give an IPv4 address such as 192.168.1.1", flag, s)
		}
		return a, nil
	}
	if cfg.Addr, err = parseAddr("addr", f.addr); err != nil {
		return cfg, err
	}
	if cfg.Router, err = parseAddr("router", f.router); err != nil {
		return cfg, err
	}
	if f.dns != "" {
		for _, d := range strings.Split(f.dns, ",") {
			a, err := parseAddr("dns", d)
			if err != nil {
				return cfg, err
			}
			cfg.DNS = append(cfg.DNS, a)
		}
	}
	if f.pool != "" {
		if cfg.Pool, err = pxe.ParseRange(f.pool); err != nil {
			return cfg, usagef("--pool: %v", err)
		}
	}
	if f.proxy && (f.pool != "" || f.router != "" || f.dns != "" || f.leaseFile != "") {
		return cfg, usagef("--pool, --router, --dns and --lease-file are for full mode; leave them out with --proxy (the existing DHCP server hands out addresses)")
	}
	if f.rules != "" {
		if cfg.Rules, err = pxe.LoadRules(f.rules); err != nil {
			return cfg, usagef("%v", err)
		}
	}
	return cfg, nil
}

// runPXE serves until interrupted. Per-client log lines go to standard
// error; on a terminal a status table (one line per client) stays below
// them.
func runPXE(ctx context.Context, e *env, cfg pxe.Config) error {
	var view *statusView
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !e.quiet {
		view = &statusView{out: e.stderr}
	}
	var logOut io.Writer = e.stderr
	if view != nil {
		logOut = view
	}
	level := slog.LevelInfo
	if e.verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	s, err := pxe.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if view != nil {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				view.render(s.Clients())
			case <-ctx.Done():
				err := s.Wait()
				view.render(s.Clients())
				return err
			}
		}
	}
	return s.Wait()
}

// statusView keeps a table of clients at the bottom of a terminal: log
// lines are written above it (erase table, write line, redraw).
type statusView struct {
	mu    sync.Mutex
	out   io.Writer
	table string
	shown int // lines of table now on screen
}

func (v *statusView) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.eraseLocked()
	n, err := v.out.Write(p)
	v.drawLocked()
	return n, err
}

// render redraws the table. pxe.StatusTable cleans what clients sent
// (escape sequences in a report, say) before it reaches the terminal.
func (v *statusView) render(cs []pxe.ClientStatus) {
	table := pxe.StatusTable(cs, time.Now())
	v.mu.Lock()
	defer v.mu.Unlock()
	v.eraseLocked()
	v.table = table
	v.drawLocked()
}

func (v *statusView) eraseLocked() {
	if v.shown > 0 {
		fmt.Fprintf(v.out, "\x1b[%dA\x1b[J", v.shown)
		v.shown = 0
	}
}

func (v *statusView) drawLocked() {
	io.WriteString(v.out, v.table)
	v.shown = strings.Count(v.table, "\n")
}
