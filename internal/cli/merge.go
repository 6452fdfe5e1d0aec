package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-rescue/lifeboat/engine"
	"github.com/lifeboat-rescue/lifeboat/internal/version"
)

func mergeCmd(e *env) *cobra.Command {
	var output, chainDir, passwordFile, split, mode string
	var overwrite, requireEncrypted bool
	c := &cobra.Command{
		Use:   "merge IMAGE -o OUTPUT",
		Short: "Write a point of a chain (incremental or differential) as one self-contained image",
		Args:  oneArg("one IMAGE", "new image", "-o", &output),
		RunE: func(c *cobra.Command, args []string) error {
			if output == "" {
				return usagef("no output image: add -o FILE")
			}
			o := engine.MergeOptions{Image: args[0], ChainDir: chainDir, Output: output, Overwrite: overwrite,
				Password: existingPassword(e, passwordFile, args[0]), Encryption: e.encryption(passwordFile, requireEncrypted),
				ToolVersion: version.Version, Log: e.log(), Progress: newBar(e)}
			var err error
			if o.Mode, err = parseMode(mode); err != nil {
				return err
			}
			if split != "" {
				if o.SplitSize, err = engine.ParseSize(split); err != nil {
					return &usageError{err}
				}
			}
			res, err := engine.Merge(c.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Merged %s into %s: %s stored in %s; the images it was made from are unchanged\n",
				args[0], output, human(res.Stored), res.Elapsed.Round(100*time.Millisecond))
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&output, "output", "o", "", "the new image")
	fl.StringVar(&chainDir, "chain-dir", "", "where the chain's earlier points are, if not next to the image")
	fl.StringVar(&passwordFile, "password-file", "", "password of an encrypted chain, from FILE (or set LIFEBOAT_PASSWORD)")
	fl.StringVar(&split, "split", "", "split the new image into parts of at most SIZE")
	fl.BoolVar(&overwrite, "overwrite", false, "replace an existing image of the same name")
	addModeFlag(fl, &mode, "the new image's files")
	addRequireEncrypted(fl, &requireEncrypted)
	return c
}
