// Package version holds the tool version recorded in every image. The
// Makefile sets it with -ldflags "-X .../internal/version.Version=...".
package version

// Version is the lifeboat release, or "dev" for an untagged build.
var Version = "dev"
