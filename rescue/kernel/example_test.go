//go:build linux

package kernel_test

import (
	"context"
	"fmt"
	"log"

	"github.com/lifeboat-rescue/lifeboat/rescue/kernel"
)

// Fetch Debian's kernel and put the modules the rescue environment needs
// into an initramfs tree.
func Example() {
	ctx := context.Background()
	k, err := kernel.Fetch(ctx, "/var/cache/lifeboat/kernel", nil)
	if err != nil {
		log.Fatal(err)
	}
	mods, err := k.Resolve(kernel.DefaultModules)
	if err != nil {
		log.Fatal(err)
	}
	if err := k.Stage("/tmp/initramfs-root", mods); err != nil {
		log.Fatal(err)
	}
	fmt.Println("boot", k.Image, "with", len(mods), "modules")
}
