package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// Defect 6 of issue 12: LIFEBOAT_PASSWORD stayed in the environment every
// child process inherits. The command line takes it at start: it is still
// used, and gone from the process's environment.
func TestPasswordEnvTakenAtStart(t *testing.T) {
	t.Setenv(passwordEnv, "correct horse")
	var out, errb bytes.Buffer
	if err := Execute(context.Background(), []string{"version"}, strings.NewReader(""), &out, &errb); err != nil {
		t.Fatal(err)
	}
	if v, ok := os.LookupEnv(passwordEnv); ok {
		t.Fatalf("%s is still in the environment after start (%q)", passwordEnv, v)
	}
	e := &env{password: "correct horse"}
	if pw, err := existingPassword(e, "", "x.lbi")(); err != nil || string(pw) != "correct horse" {
		t.Fatalf("the taken password is not used: %q %v", pw, err)
	}
}
