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
// Model (model.go) is a router: it owns the main menu, the disks, network
// and power screens and the log, and hands everything else to the open
// wizard — restore.go (+ restore_options.go), clone.go, backup.go
// (+ backup_chain.go), check.go — each a type with its own steps, keys
// and screens. What several wizards share is written once: the image
// picker (imagepick.go), disk lists and the layout step (pickers.go,
// disks.go), and the operation a wizard launches (operation.go) with its
// confirmation, progress and result screens (confirm.go, progress.go,
// result.go). A failure that wrote nothing goes back into the wizard, to
// the step where the refused choice can be made again.
//
// Screens are plain text within 80×25 and never rely on colour alone: the
// selected line carries a "> " marker, so a serial console without colours
// (TERM=vt100, linux or dumb) shows everything.
package tui
