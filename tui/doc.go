// Package tui is Lifeboat's text UI: the rescue console a person meets
// after booting the rescue media, and `lifeboat tui` on a running system.
// It is a bubbletea program with wizards for restore, clone, backup and
// check, a disk list, the network and power; it drives the engine only
// through its public API (engine.Restore, Clone, Backup, Check, Info,
// Disks) and its Progress interface, so the engine never imports it.
//
// The smallest use, on a terminal:
//
//	act, err := tui.Run(ctx, tui.Options{Images: tui.FindImages("/media", "/mnt")})
//
// Everything that differs between the rescue environment and a host —
// where images are found, how a shell starts, whether the machine may be
// powered off, how the network is configured — comes in through Options;
// tests inject a fake Backend so screens do not depend on real disks.
//
// Screens are plain text within 80×25 and never rely on colour alone: the
// selected line carries a "> " marker, so a serial console without colours
// (TERM=vt100, linux or dumb) shows everything.
package tui
