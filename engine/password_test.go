//go:build linux

package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Defect 6 of issue 12: the tools the engine runs (e2fsck, resize2fs,
// ntfsresize) inherited LIFEBOAT_PASSWORD. The CLI removes it at start; the
// engine's runner leaves it out too, for a library user who set it later.
func TestToolsDoNotInheritPassword(t *testing.T) {
	t.Setenv(PasswordEnv, "correct horse")
	out := filepath.Join(t.TempDir(), "env")
	if err := run(context.Background(), nil, "sh", "-c", `env > "$0"`, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), PasswordEnv) || strings.Contains(string(b), "correct horse") {
		t.Fatalf("the tool's environment holds the password:\n%s", b)
	}
	if !strings.Contains(string(b), "PATH=") {
		t.Fatalf("the tool got no environment at all:\n%s", b)
	}
}
