package tasks

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseTrigger(t *testing.T) {
	good := map[string]string{
		"daily 02:00":               "daily 02:00",
		"Daily 14:30,02:00":         "daily 02:00,14:30",
		"weekly mon-fri 12:30":      "weekly mon,tue,wed,thu,fri 12:30",
		"weekly sat,sun 08:00":      "weekly sun,sat 08:00",
		"weekly fri-mon 08:00":      "weekly sun,mon,fri,sat 08:00",
		"monthly 1,15 02:00":        "monthly 1,15 02:00",
		"monthly last,1 23:59":      "monthly last,1 23:59",
		"every 4h":                  "every 4h",
		"every 90m 08:00-18:00":     "every 1h30m 08:00-18:00",
		"once 2027-01-02 03:04":     "once 2027-01-02 03:04",
		"startup":                   "startup",
		"logon":                     "logon",
		"shutdown":                  "shutdown",
		"usb":                       "usb",
		"usb BACKUPS":               "usb BACKUPS",
		"  daily   02:00  ":         "daily 02:00",
		"weekly monday,friday 2:00": "", // hour needs two digits? no: parsed below
	}
	for in, want := range good {
		tr, err := ParseTrigger(in)
		if want == "" {
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := tr.String(); got != want {
			t.Errorf("%q: String() = %q, want %q", in, got, want)
		}
		// What String writes parses back to the same.
		if again, err := ParseTrigger(tr.String()); err != nil || again.String() != want {
			t.Errorf("%q does not round-trip: %v %q", want, err, again.String())
		}
	}
	bad := map[string]string{
		"":                      "empty schedule",
		"dayly 02:00":           `unknown kind "dayly"`,
		"daily 2pm":             "not a time of day",
		"daily 24:00":           "not a time of day",
		"daily":                 `write it as "daily 02:00`,
		"weekly 02:00":          `write it as "weekly mon,fri 02:00"`,
		"weekly funday 02:00":   "not a day of the week",
		"monthly 32 02:00":      "not a day of the month",
		"every 2m":              "from 5m to 24h",
		"every 25h":             "from 5m to 24h",
		"every 1h 18:00-08:00":  "ends before it starts",
		"every 1h 08:00":        "should be FROM-TO",
		"once 2027-13-01 02:00": "not a date",
		"startup now":           "takes nothing after it",
		`usb "my disk"`:         "usb LABEL",
	}
	for in, want := range bad {
		_, err := ParseTrigger(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", in, err, want)
		}
	}
}

// randomTrigger makes a timed trigger from r.
func randomTrigger(r *rand.Rand) string {
	clock := func() string { return fmt.Sprintf("%02d:%02d", r.IntN(24), r.IntN(12)*5) }
	clocks := func() string {
		n := 1 + r.IntN(3)
		var c []string
		for range n {
			c = append(c, clock())
		}
		return strings.Join(c, ",")
	}
	switch r.IntN(5) {
	case 0:
		return "daily " + clocks()
	case 1:
		var d []string
		for _, n := range dayNames {
			if r.IntN(3) == 0 {
				d = append(d, n)
			}
		}
		if len(d) == 0 {
			d = []string{"mon-fri"}
		}
		return "weekly " + strings.Join(d, ",") + " " + clocks()
	case 2:
		var d []string
		for range 1 + r.IntN(3) {
			if r.IntN(4) == 0 {
				d = append(d, "last")
			} else {
				d = append(d, fmt.Sprint(1+r.IntN(31)))
			}
		}
		return "monthly " + strings.Join(d, ",") + " " + clocks()
	case 3:
		every := []string{"5m", "15m", "45m", "1h", "90m", "2h", "4h", "7h", "24h"}[r.IntN(9)]
		if r.IntN(2) == 0 {
			return "every " + every
		}
		from := r.IntN(20)
		return fmt.Sprintf("every %s %02d:00-%02d:%02d", every, from, from+1+r.IntN(23-from), r.IntN(60))
	}
	return fmt.Sprintf("once %d-%02d-%02d %s", 2026+r.IntN(3), 1+r.IntN(12), 1+r.IntN(28), clock())
}

var elapseRE = regexp.MustCompile(`(?m)(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC`)

// TestOnCalendarAgreesWithSystemd renders generated schedules as systemd
// calendar expressions and has systemd itself (systemd-analyze calendar)
// compute when they fire, from generated base times: the times must be
// the ones Trigger.Next computes — what "task show" promises is what the
// timer does.
func TestOnCalendarAgreesWithSystemd(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatalf("systemd-analyze is missing (make deps installs systemd): %v", err)
	}
	r := rand.New(rand.NewPCG(testSeed(t), 17))
	for range 40 {
		s := randomTrigger(r)
		tr, err := ParseTrigger(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		base := time.Date(2026, time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), 0, 0, time.UTC)
		const n = 6
		cal := tr.OnCalendar()
		args := append([]string{"calendar", "--base-time=" + base.Format("2006-01-02 15:04:05"), fmt.Sprintf("--iterations=%d", n)}, cal...)
		cmd := exec.Command("systemd-analyze", args...)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q → %q: systemd-analyze: %v\n%s", s, cal, err, out)
		}
		var theirs []time.Time
		for _, m := range elapseRE.FindAllStringSubmatch(string(out), -1) {
			at, _ := time.Parse("2006-01-02 15:04:05", m[1])
			if !slices.Contains(theirs, at) {
				theirs = append(theirs, at)
			}
		}
		slices.SortFunc(theirs, func(a, b time.Time) int { return a.Compare(b) })
		if len(theirs) > n {
			theirs = theirs[:n]
		}
		var ours []time.Time
		at := base
		for range len(theirs) {
			if at = tr.Next(at); at.IsZero() {
				break
			}
			ours = append(ours, at)
		}
		if len(theirs) == 0 && tr.Kind == "once" && !tr.Next(base).IsZero() {
			t.Errorf("%q from %s: systemd says it never fires, Next says %s", s, base, tr.Next(base))
		}
		if !slices.EqualFunc(ours, theirs, time.Time.Equal) {
			t.Errorf("%q (OnCalendar %q) from %s:\n systemd: %v\n Next:    %v", s, cal, base, theirs, ours)
		}
	}
}

// testSeed is the seed of a generated test, printed; LIFEBOAT_SEED
// reproduces a run.
func testSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LIFEBOAT_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (LIFEBOAT_SEED=%d reproduces)", seed, seed)
	return seed
}

var everyTrigger = []string{"daily 02:00,14:30", "weekly mon,fri 12:00", "monthly 1,last 03:15", "every 90m 08:00-18:00",
	"once 2027-01-02 03:04", "startup", "logon", "shutdown", "usb BACKUPS"}
