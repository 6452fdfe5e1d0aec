package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lifeboat-rescue/lifeboat/internal/version"
	"github.com/lifeboat-rescue/lifeboat/tui"
)

// tuiCmd runs the text UI on a running system: backups, checks, restores
// and clones onto other disks, with images found under --images folders
// and the filesystems mounted under /media and /mnt.
func tuiCmd(e *env) *cobra.Command {
	var roots []string
	c := &cobra.Command{
		Use:   "tui",
		Short: "The text UI: restore, clone, back up and check through menus",
		Long: `The text UI: menus and wizards for restore, clone, backup and check. Nothing
is written to a disk until a summary was shown and the target's name typed.
Images are looked for under the --images folders and /media and /mnt.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, args []string) error {
			if _, ok := terminalFd(e.stdin); !ok && !e.interactive {
				return usagef("lifeboat tui needs a terminal; use the other commands in scripts")
			}
			all := append(append([]string{}, roots...), "/media", "/mnt")
			var dests []string
			for _, r := range roots {
				dests = append(dests, r)
			}
			_, err := tui.Run(c.Context(), tui.Options{
				Version:      version.Version,
				Images:       tui.FindImages(all...),
				Destinations: func() []string { return dests },
				Colour:       tui.ColourTerm(os.Getenv("TERM")),
				Input:        e.stdin,
				Output:       e.stdout,
			})
			if err != nil {
				return fmt.Errorf("text UI: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringSliceVar(&roots, "images", nil, "folder holding images (repeatable); also offered as backup destination")
	return c
}
