package pxe

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/pin/tftp/v3"
)

// newTFTP is a read-only pin/tftp server over s.files.
func (s *Server) newTFTP(ctx context.Context) *tftp.Server {
	t := tftp.NewServer(func(name string, rf io.ReaderFrom) error { return s.tftpRead(ctx, name, rf) }, nil)
	t.SetTimeout(2 * time.Second)
	t.SetRetries(5)
	return t
}

func (s *Server) tftpRead(ctx context.Context, name string, rf io.ReaderFrom) error {
	var peer netip.Addr
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ra := ot.RemoteAddr()
		peer, _ = netip.AddrFromSlice(ra.IP)
		peer = peer.Unmap()
	}
	// GRUB asks for its prefix's files by absolute path
	// (/grub/x86_64-efi/grub.cfg): names are relative to the TFTP root.
	name = strings.TrimPrefix(name, "/")
	mac := s.clients.macOf(peer)
	log := s.log.With("mac", mac, "ip", peer)
	shown := clean(name, maxText)
	s.transfers.Add(1)
	defer s.transfers.Done()
	release, why := s.tftpLimit.acquire(peer)
	if release == nil {
		s.warnEvery("tftp", "tftp: transfer refused: "+why, "mac", mac, "ip", peer, "file", shown)
		return errors.New(why + "; try again later")
	}
	defer release()
	var src io.Reader
	var size int64
	if rest, ok := strings.CutPrefix(name, grubCfgPrefixName+"/"); ok {
		cfg, args, err := s.grubConfig(rest, peer)
		if errors.Is(err, fs.ErrNotExist) {
			// GRUB looks for its module lists at every start.
			log.Debug("tftp: not found", "file", shown)
			return err
		}
		if err != nil {
			s.warnEvery("tftp-refused", "tftp: refused", "mac", mac, "ip", peer, "file", shown, "err", err)
			return err
		}
		if args != "" {
			log.Info("tftp: grub config", "file", shown, "args", args)
		}
		src, size = strings.NewReader(cfg), int64(len(cfg))
	} else {
		f, st, err := s.files.openTFTP(name)
		if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(name, secureBootDir+"/") {
			// Shim asks for optional files beside itself
			// (revocations_sku.efi) at every start.
			log.Debug("tftp: not found", "file", shown)
			return err
		}
		if err != nil {
			s.warnEvery("tftp-refused", "tftp: refused", "mac", mac, "ip", peer, "file", shown, "err", err)
			return err
		}
		defer f.Close()
		src, size = f, st.Size()
	}
	mac = s.clients.macOf(peer) // a GRUB configuration may have named the client
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(size)
	}
	if mac != "" {
		s.clients.update(mac, peer, "", stageOf(name), "tftp "+shown)
	}
	start := time.Now()
	n, err := rf.ReadFrom(ctxReader{ctx, src})
	d := time.Since(start)
	if ctx.Err() != nil {
		// The server stopped (and said so) while a client left the
		// transfer hanging; whoever gave the logger may be gone.
		return nil
	}
	if err != nil {
		log.Warn("tftp: transfer failed", "file", shown, "bytes", n, "duration", d.Round(time.Millisecond), "err", err)
		return nil // the transfer already ended; pin/tftp must not send a second error
	}
	log.Info("tftp: sent", "file", shown, "bytes", n, "duration", d.Round(time.Millisecond))
	if mac != "" {
		s.clients.update(mac, peer, "", stageAfter(name), "tftp sent "+shown)
	}
	return nil
}

// stageOf is the stage of a client that fetches name.
func stageOf(name string) Stage {
	switch {
	case name == "boot.ipxe", strings.HasPrefix(name, grubCfgPrefixName+"/"):
		return StageScript
	case strings.HasPrefix(name, "rescue/"):
		return StageLoading
	case strings.HasPrefix(name, "images/"):
		return StageImage
	}
	return StageBootloader
}

// stageAfter is the stage of a client that finished fetching name.
func stageAfter(name string) Stage {
	if path.Base(name) == "initramfs" {
		return StageBooted
	}
	return stageOf(name)
}

// ctxReader stops a transfer when the server stops.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
