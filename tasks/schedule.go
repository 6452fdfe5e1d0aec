package tasks

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Trigger is one schedule of a task: when the platform's scheduler starts
// "lifeboat task run".
//
//	once 2026-12-24 02:00
//	daily 02:00[,14:00…]
//	weekly mon,fri 02:00        (days: mon…sun, ranges such as mon-fri)
//	monthly 1,15 02:00          (days of the month, or last)
//	every 4h [08:00-18:00]      (5m to 24h, within a window of the day)
//	startup | logon | shutdown
//	usb [LABEL]                 (a USB disk is plugged in, with that filesystem label)
type Trigger struct {
	Kind      string // once daily weekly monthly every startup logon shutdown usb
	Date      time.Time
	At        []Clock        // times of day (once, daily, weekly, monthly)
	Weekdays  []time.Weekday // weekly
	MonthDays []int          // monthly; 0 is the last day
	Every     time.Duration  // every
	From, To  Clock          // every: the window (To 0: to midnight)
	Label     string         // usb
}

// Clock is a time of day in minutes after midnight.
type Clock int

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

func parseClock(s string) (Clock, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 || len(m) != 2 {
		return 0, fmt.Errorf("%q is not a time of day: use HH:MM, 24-hour (02:00, 18:30)", s)
	}
	return Clock(hh*60 + mm), nil
}

func parseClocks(s string) ([]Clock, error) {
	var out []Clock
	for _, p := range strings.Split(s, ",") {
		c, err := parseClock(p)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out, nil
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func parseWeekdays(s string) ([]time.Weekday, error) {
	day := func(n string) (int, error) {
		n = strings.ToLower(n)
		for i, d := range dayNames {
			if n == d || (len(n) > 3 && strings.HasPrefix(strings.ToLower(time.Weekday(i).String()), n)) {
				return i, nil
			}
		}
		return 0, fmt.Errorf("%q is not a day of the week: use mon, tue, wed, thu, fri, sat, sun (lists mon,thu; ranges mon-fri)", n)
	}
	var out []time.Weekday
	for _, p := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(p, "-")
		from, err := day(a)
		if err != nil {
			return nil, err
		}
		to := from
		if isRange {
			if to, err = day(b); err != nil {
				return nil, err
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			if !slices.Contains(out, time.Weekday(d)) {
				out = append(out, time.Weekday(d))
			}
			if d == to {
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// ParseTrigger reads one schedule.
func ParseTrigger(s string) (Trigger, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Trigger{}, errors.New("empty schedule: use once, daily, weekly, monthly, every, startup, logon, shutdown or usb")
	}
	t := Trigger{Kind: strings.ToLower(f[0])}
	args := f[1:]
	want := func(n int, form string) error {
		if len(args) != n {
			return fmt.Errorf("%q: write it as %q", s, form)
		}
		return nil
	}
	var err error
	switch t.Kind {
	case "once":
		if err := want(2, "once 2026-12-24 02:00"); err != nil {
			return t, err
		}
		if t.Date, err = time.ParseInLocation("2006-01-02", args[0], time.Local); err != nil {
			return t, fmt.Errorf("%q: %q is not a date: use YYYY-MM-DD", s, args[0])
		}
		c, err := parseClock(args[1])
		if err != nil {
			return t, fmt.Errorf("%q: %w", s, err)
		}
		t.At = []Clock{c}
	case "daily":
		if err := want(1, "daily 02:00 (or daily 02:00,14:00)"); err != nil {
			return t, err
		}
		if t.At, err = parseClocks(args[0]); err != nil {
			return t, fmt.Errorf("%q: %w", s, err)
		}
	case "weekly":
		if err := want(2, "weekly mon,fri 02:00"); err != nil {
			return t, err
		}
		if t.Weekdays, err = parseWeekdays(args[0]); err != nil {
			return t, fmt.Errorf("%q: %w", s, err)
		}
		if t.At, err = parseClocks(args[1]); err != nil {
			return t, fmt.Errorf("%q: %w", s, err)
		}
	case "monthly":
		if err := want(2, "monthly 1,15 02:00 (or monthly last 02:00)"); err != nil {
			return t, err
		}
		for _, d := range strings.Split(args[0], ",") {
			n, err := strconv.Atoi(d)
			if strings.EqualFold(d, "last") {
				n, err = 0, nil
			} else if err != nil || n < 1 || n > 31 {
				return t, fmt.Errorf("%q: %q is not a day of the month: use 1 to 31 or last", s, d)
			}
			if !slices.Contains(t.MonthDays, n) {
				t.MonthDays = append(t.MonthDays, n)
			}
		}
		slices.Sort(t.MonthDays)
		if t.At, err = parseClocks(args[1]); err != nil {
			return t, fmt.Errorf("%q: %w", s, err)
		}
	case "every":
		if len(args) < 1 || len(args) > 2 {
			return t, fmt.Errorf("%q: write it as \"every 4h\" or \"every 30m 08:00-18:00\"", s)
		}
		if t.Every, err = time.ParseDuration(args[0]); err != nil || t.Every < 5*time.Minute || t.Every > 24*time.Hour || t.Every%time.Minute != 0 {
			return t, fmt.Errorf("%q: %q: give whole minutes from 5m to 24h (30m, 4h, 1h30m)", s, args[0])
		}
		if len(args) == 2 {
			a, b, ok := strings.Cut(args[1], "-")
			if !ok {
				return t, fmt.Errorf("%q: the window %q should be FROM-TO, e.g. 08:00-18:00", s, args[1])
			}
			if t.From, err = parseClock(a); err != nil {
				return t, fmt.Errorf("%q: %w", s, err)
			}
			if t.To, err = parseClock(b); err != nil {
				return t, fmt.Errorf("%q: %w", s, err)
			}
			if t.To <= t.From {
				return t, fmt.Errorf("%q: the window ends before it starts (windows across midnight: use two schedules)", s)
			}
		}
	case "startup", "logon", "shutdown":
		if len(args) != 0 {
			return t, fmt.Errorf("%q: %s takes nothing after it", s, t.Kind)
		}
	case "usb":
		if len(args) > 1 {
			return t, fmt.Errorf("%q: write it as \"usb\" (any USB disk) or \"usb LABEL\" (a filesystem label without spaces)", s)
		}
		if len(args) == 1 {
			t.Label = args[0]
			if strings.ContainsAny(t.Label, `"\*?[]`) {
				return t, fmt.Errorf("%q: a label without quotes, backslashes or wildcards", s)
			}
		}
	default:
		return t, fmt.Errorf("%q: unknown kind %q; use once, daily, weekly, monthly, every, startup, logon, shutdown or usb", s, f[0])
	}
	return t, nil
}

func clocks(cs []Clock) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.String())
	}
	return strings.Join(s, ",")
}

// String is the schedule as the configuration writes it.
func (t Trigger) String() string {
	switch t.Kind {
	case "once":
		return "once " + t.Date.Format("2006-01-02") + " " + clocks(t.At)
	case "daily":
		return "daily " + clocks(t.At)
	case "weekly":
		var d []string
		for _, w := range t.Weekdays {
			d = append(d, dayNames[w])
		}
		return "weekly " + strings.Join(d, ",") + " " + clocks(t.At)
	case "monthly":
		return "monthly " + monthDays(t.MonthDays, "last") + " " + clocks(t.At)
	case "every":
		s := "every " + shortDuration(t.Every)
		if t.To > 0 {
			s += " " + t.From.String() + "-" + t.To.String()
		}
		return s
	case "usb":
		if t.Label != "" {
			return "usb " + t.Label
		}
	}
	return t.Kind
}

func monthDays(ds []int, last string) string {
	var s []string
	for _, d := range ds {
		if d == 0 {
			s = append(s, last)
		} else {
			s = append(s, strconv.Itoa(d))
		}
	}
	return strings.Join(s, ",")
}

func shortDuration(d time.Duration) string {
	s := strings.TrimSuffix(d.String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Timed reports whether the trigger is a time of the calendar (as opposed
// to an event: startup, logon, shutdown, usb).
func (t Trigger) Timed() bool {
	switch t.Kind {
	case "once", "daily", "weekly", "monthly", "every":
		return true
	}
	return false
}

// times lists the times of day an "every" trigger fires.
func (t Trigger) times() []Clock {
	end := t.To
	if end == 0 {
		end = 24 * 60
	}
	var out []Clock
	for c := t.From; c < end || (c == end && t.To > 0); c += Clock(t.Every / time.Minute) {
		if c >= 24*60 {
			break
		}
		out = append(out, c)
	}
	return out
}

// Next is the first time after now the trigger fires (zero for event
// triggers and for a once that has passed).
func (t Trigger) Next(now time.Time) time.Time {
	if !t.Timed() {
		return time.Time{}
	}
	if t.Kind == "once" {
		at := time.Date(t.Date.Year(), t.Date.Month(), t.Date.Day(), int(t.At[0])/60, int(t.At[0])%60, 0, 0, now.Location())
		if at.After(now) {
			return at
		}
		return time.Time{}
	}
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	for range 400 {
		if t.onDay(day) {
			cs := t.At
			if t.Kind == "every" {
				cs = t.times()
			}
			for _, c := range cs {
				at := day.Add(time.Duration(c) * time.Minute)
				if at.After(now) {
					return at
				}
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}
}

func (t Trigger) onDay(d time.Time) bool {
	switch t.Kind {
	case "weekly":
		return slices.Contains(t.Weekdays, d.Weekday())
	case "monthly":
		last := d.AddDate(0, 0, 1).Day() == 1
		return slices.Contains(t.MonthDays, d.Day()) || (last && slices.Contains(t.MonthDays, 0))
	}
	return true
}

// OnCalendar renders a timed trigger as systemd OnCalendar= expressions.
func (t Trigger) OnCalendar() []string {
	hm := func(cs []Clock) []string {
		// One expression per minute value: "H1,H2:MM:00".
		byMin := map[int][]string{}
		var mins []int
		for _, c := range cs {
			m := int(c) % 60
			if _, ok := byMin[m]; !ok {
				mins = append(mins, m)
			}
			byMin[m] = append(byMin[m], fmt.Sprintf("%02d", int(c)/60))
		}
		slices.Sort(mins)
		var out []string
		for _, m := range mins {
			out = append(out, fmt.Sprintf("%s:%02d:00", strings.Join(byMin[m], ","), m))
		}
		return out
	}
	var prefix string
	cs := t.At
	switch t.Kind {
	case "once":
		prefix = t.Date.Format("2006-01-02")
	case "daily":
		prefix = "*-*-*"
	case "weekly":
		var d []string
		for _, w := range t.Weekdays {
			d = append(d, strings.ToUpper(dayNames[w][:1])+dayNames[w][1:])
		}
		prefix = strings.Join(d, ",") + " *-*-*"
	case "monthly":
		var days []string
		last := false
		for _, d := range t.MonthDays {
			if d == 0 {
				last = true
			} else {
				days = append(days, fmt.Sprintf("%02d", d))
			}
		}
		var out []string
		for _, c := range hm(cs) {
			if len(days) > 0 {
				out = append(out, "*-*-"+strings.Join(days, ",")+" "+c)
			}
			if last {
				out = append(out, "*-*~01 "+c)
			}
		}
		return out
	case "every":
		prefix, cs = "*-*-*", t.times()
	default:
		return nil
	}
	var out []string
	for _, c := range hm(cs) {
		out = append(out, prefix+" "+c)
	}
	return out
}
