// Package engine runs Lifeboat's operations — backup, restore, check, info,
// disks — over block devices and image files. It knows nothing of screens or
// flags: the CLI, the TUI, the rescue init and the PXE server call it and
// render its Progress reports.
//
// The smallest use backs up a disk image file and restores it:
//
//	_, err := engine.Backup(ctx, engine.BackupOptions{
//		Source: "disk.img", Kind: images.KindDisk, Output: "disk.lbi",
//		Compression: images.LevelNormal,
//	})
//	...
//	_, err = engine.Restore(ctx, engine.RestoreOptions{Image: "disk.lbi", Target: "copy.img"})
//
// Every operation takes a context and returns its error wrapped when it is
// cancelled. Refusals (ErrRefused, images.ErrWrongPassword, images.ErrCorrupt)
// happen before anything is written.
package engine
