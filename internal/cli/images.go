package cli

import (
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

func imagesCmd(e *env) *cobra.Command {
	var jsonOut bool
	var passwordFile string
	c := &cobra.Command{
		Use:   "images FOLDER|s3://BUCKET/PREFIX/",
		Short: "List the images in a folder or S3 prefix, chain by chain, with points, sizes and dates",
		Args:  exactArgs(1, "one FOLDER or s3://BUCKET/PREFIX/"),
		RunE: func(c *cobra.Command, args []string) error {
			var pw func() ([]byte, error)
			if passwordFile != "" || e.password != "" {
				pw = existingPassword(e, passwordFile, args[0])
			}
			list := engine.ListChains(c.Context(), args[0], pw)
			if jsonOut {
				if list == nil {
					list = []engine.FolderImage{}
				}
				return writeJSON(e, list)
			}
			if len(list) == 0 {
				fmt.Fprintf(e.stdout, "No images in %s\n", args[0])
				return nil
			}
			var total int64
			chains := 0
			for _, f := range list {
				total += f.Size
				name := path.Base(strings.ReplaceAll(f.Image, `\`, "/"))
				if f.Error != "" {
					fmt.Fprintf(e.stdout, "%s: cannot be read: %s\n", name, f.Error)
					continue
				}
				kind := string(f.Kind)
				if kind == "" {
					kind = "point (encrypted)"
				}
				indent := "  └ "
				if f.Parent == "" {
					chains++
					indent = ""
				}
				fmt.Fprintf(e.stdout, "%s%s  %s  %s  %s\n", indent, name, kind, f.Created.Local().Format("2006-01-02 15:04"), human(f.Size))
			}
			fmt.Fprintf(e.stdout, "%d images in %d chains, %s\n", len(list), chains, human(total))
			return nil
		},
	}
	c.Flags().BoolVar(&jsonOut, "json", false, "print as JSON")
	c.Flags().StringVar(&passwordFile, "password-file", "", "the chains' password, to tell incremental from differential points of encrypted images")
	return c
}
