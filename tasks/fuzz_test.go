package tasks

import (
	"testing"
)

// FuzzConfig: any bytes as the configuration file give a configuration or
// a ConfigError, never a panic; a configuration that loads is written back
// as a file that loads to the same thing.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("tasks:\n  - name: pc1\n    source: part:/dev/sda1\n    dest: /b\n    schedule: [startup, 'every 4h 08:00-18:00']\n    scheme: full keep=3 max-size=1T\n"))
	f.Add([]byte("tasks: []\n"))
	f.Add([]byte("tasks:\n  - {name: x, source: system, dest: /x, notify: ['https://h/p'], notify-on: always}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.yaml", b)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		c2, err := Parse("again.yaml", out)
		if err != nil {
			t.Fatalf("what Marshal wrote does not load: %v\n%s", err, out)
		}
		out2, _ := c2.Marshal()
		if string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n---\n%s", out, out2)
		}
	})
}

// FuzzTrigger: a schedule that parses is written back (String) as one
// that parses to the same, with calendar expressions for every timed one.
func FuzzTrigger(f *testing.F) {
	for _, s := range everyTrigger {
		f.Add(s)
	}
	f.Add("weekly fri-mon 23:59")
	f.Add("monthly last 00:00")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseTrigger(s)
		if err != nil {
			return
		}
		again, err := ParseTrigger(tr.String())
		if err != nil || again.String() != tr.String() {
			t.Fatalf("%q → %q → %v %q", s, tr.String(), err, again.String())
		}
		if tr.Timed() && len(tr.OnCalendar()) == 0 {
			t.Fatalf("%q: no calendar expression", s)
		}
	})
}

// FuzzScheme: a scheme that parses is written back as the same scheme.
func FuzzScheme(f *testing.F) {
	for _, s := range []string{"", "full keep=3", "incremental full-every=7 keep-groups=4", "differential full-every=2 keep-groups=1 max-size=500G", "inc max-size=1K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScheme(s)
		if err != nil {
			return
		}
		again, err := ParseScheme(sc.String())
		if err != nil || again != sc {
			t.Fatalf("%q → %q → %v %+v", s, sc.String(), err, again)
		}
	})
}
