//go:build linux

package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// An alias that only built-in code has is not an unknown module: Resolve
// yields nothing for it, as modprobe does.
func TestResolveBuiltinAlias(t *testing.T) {
	k := testKernel(t)
	if err := os.WriteFile(filepath.Join(k.ModuleDir, "modules.builtin.modinfo"),
		[]byte("af_packet.license=GPL\x00tracefs.alias=fs-tracefs\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	mods, err := k.Resolve([]string{"fs-tracefs", "virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	if want := []string{"virtio_ring", "virtio", "virtio_blk"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Resolve = %q, want %q", names, want)
	}
	// Still an error: a name neither a module nor any alias has.
	if _, err := k.Resolve([]string{"fs-nosuchfs"}); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("Resolve(fs-nosuchfs) = %v, want ErrUnknownModule", err)
	}
}
