package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lifeboat-rescue/lifeboat/engine/blockdev"
	"github.com/mxk/go-vss"
)

// vssSnapshotter takes Volume Shadow Copies through WMI (Win32_ShadowCopy,
// github.com/mxk/go-vss): the snapshot is read as a volume device
// (\\?\GLOBALROOT\Device\HarddiskVolumeShadowCopyN) and removed again by
// its release. Such copies outlive the process: one left by a killed
// backup stays until removed (vssadmin delete shadows) or until Windows
// drops old copies for space.
type vssSnapshotter struct{}

func init() { platformSnapshotter = vssSnapshotter{} }

func (vssSnapshotter) Snapshot(ctx context.Context, name string) (io.ReaderAt, int64, func() error, error) {
	id, err := vss.Create(name)
	if err != nil {
		// VSS snapshots NTFS and ReFS; FAT and exFAT volumes have none.
		return nil, 0, nil, fmt.Errorf("VSS: %w", err)
	}
	remove := func() error {
		if err := vss.Remove(id); err != nil {
			return fmt.Errorf("remove shadow copy %s (vssadmin delete shadows /shadow=%s): %w", id, id, err)
		}
		return nil
	}
	sc, err := vss.Get(id)
	if err != nil {
		return nil, 0, nil, errors.Join(fmt.Errorf("VSS: find shadow copy %s: %w", id, err), remove())
	}
	dev, err := blockdev.Open(sc.DeviceObject, blockdev.ReadOnly)
	if err != nil {
		return nil, 0, nil, errors.Join(fmt.Errorf("VSS: open shadow copy %s: %w", sc.DeviceObject, err), remove())
	}
	return dev, dev.Size, func() error { return errors.Join(dev.Close(), remove()) }, nil
}
