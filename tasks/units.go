package tasks

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
)

// Unit is one file the platform's scheduler reads.
type Unit struct {
	Name    string // file name
	Dir     string // "systemd" (/etc/systemd/system) or "udev" (/etc/udev/rules.d); "" on Windows
	Content []byte
	// Enable is set on the units "systemctl enable" starts at boot.
	Enable bool
}

// UnitPrefix starts the name of every scheduler unit a task gets.
const UnitPrefix = "lifeboat-task-"

// runArgs is the command line the scheduler runs for a task: exactly what
// "lifeboat task run NAME" by hand runs.
func runArgs(t *Task, event string) []string {
	a := []string{"--quiet", "task", "run", t.Name, "--scheduled"}
	if event == "usb" {
		a = append(a, "--if-dest-present")
	}
	return a
}

// sdQuote quotes one argument for a systemd Exec line.
func sdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;$") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`).Replace(s) + `"`
}

func sdExec(exe string, args []string) string {
	out := []string{sdQuote(exe)}
	for _, a := range args {
		out = append(out, sdQuote(a))
	}
	return strings.Join(out, " ")
}

// SystemdUnits renders a task's schedules as systemd units: a oneshot
// service running the task, a timer for calendar times and startup
// (Persistent= runs a missed time at the next boot), a service that runs
// the task when it is stopped at shutdown, one pulled in by every user's
// first logon, and a udev rule for a USB disk being plugged in. env is
// the environment the runs need (LIFEBOAT_CONFIG, LIFEBOAT_STATE when not
// the defaults).
func SystemdUnits(t *Task, exe string, env []string) []Unit {
	base := UnitPrefix + fileName(t.Name)
	var envLines string
	for _, e := range env {
		envLines += "Environment=" + sdQuote(e) + "\n"
	}
	service := func(desc, extra, exec, install string) []byte {
		b := fmt.Appendf(nil, `[Unit]
Description=%s
After=local-fs.target remote-fs.target network-online.target
Wants=network-online.target
RequiresMountsFor=%s

[Service]
Type=oneshot
%s%s
%sNice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
`, desc, sdQuote(t.Dest), envLines, exec, extra)
		if install != "" {
			b = fmt.Appendf(b, "\n[Install]\nWantedBy=%s\n", install)
		}
		return b
	}
	var units []Unit
	units = append(units, Unit{Name: base + ".service", Dir: "systemd",
		Content: service("Lifeboat backup task "+t.Name, "", "ExecStart="+sdExec(exe, runArgs(t, "")), "")})
	var cal []string
	var boot, logon, shutdown bool
	var usb []Trigger
	for _, s := range t.Schedule {
		tr, err := ParseTrigger(s)
		if err != nil {
			continue
		}
		switch tr.Kind {
		case "startup":
			boot = true
		case "logon":
			logon = true
		case "shutdown":
			shutdown = true
		case "usb":
			usb = append(usb, tr)
		default:
			cal = append(cal, tr.OnCalendar()...)
		}
	}
	if len(cal) > 0 || boot {
		var b bytes.Buffer
		fmt.Fprintf(&b, "[Unit]\nDescription=Schedule of Lifeboat backup task %s\n\n[Timer]\n", t.Name)
		for _, c := range cal {
			fmt.Fprintf(&b, "OnCalendar=%s\n", c)
		}
		if boot {
			b.WriteString("OnBootSec=2min\n")
		}
		if len(cal) > 0 {
			fmt.Fprintf(&b, "Persistent=%t\n", t.Missed != "skip")
		}
		fmt.Fprintf(&b, "AccuracySec=1min\nUnit=%s.service\n\n[Install]\nWantedBy=timers.target\n", base)
		units = append(units, Unit{Name: base + ".timer", Dir: "systemd", Content: b.Bytes(), Enable: true})
	}
	if shutdown {
		// Started at boot doing nothing; stopping it at shutdown runs the
		// task, before the network and remote filesystems go (After=).
		c := service("Lifeboat backup task "+t.Name+" at shutdown", "RemainAfterExit=yes\nTimeoutStopSec=6h\n",
			"ExecStart=/bin/true\nExecStop="+sdExec(exe, runArgs(t, "")), "multi-user.target")
		units = append(units, Unit{Name: base + "-shutdown.service", Dir: "systemd", Content: c, Enable: true})
	}
	if logon {
		// user@.service starts with a user's first session: every
		// instance pulls this in (user@.service.wants/).
		c := service("Lifeboat backup task "+t.Name+" at logon", "", "ExecStart="+sdExec(exe, runArgs(t, "")), "user@.service")
		units = append(units, Unit{Name: base + "-logon.service", Dir: "systemd", Content: c, Enable: true})
	}
	if len(usb) > 0 {
		units = append(units, Unit{Name: base + "-usb.service", Dir: "systemd",
			Content: service("Lifeboat backup task "+t.Name+" when a USB disk is plugged in", "", "ExecStart="+sdExec(exe, runArgs(t, "usb")), "")})
		var b bytes.Buffer
		fmt.Fprintf(&b, "# Lifeboat backup task %s: run when a USB disk is plugged in.\n", t.Name)
		for _, u := range usb {
			match := `ENV{ID_FS_TYPE}=="?*"`
			if u.Label != "" {
				match = fmt.Sprintf(`ENV{ID_FS_LABEL}=="%s"`, u.Label)
			}
			fmt.Fprintf(&b, `ACTION=="add", SUBSYSTEM=="block", ENV{ID_BUS}=="usb", %s, TAG+="systemd", ENV{SYSTEMD_WANTS}+="%s-usb.service"`+"\n", match, base)
		}
		units = append(units, Unit{Name: "90-" + base + ".rules", Dir: "udev", Content: b.Bytes()})
	}
	return units
}

// TaskPath is the task's path in Windows Task Scheduler.
func TaskPath(name string) string { return `\Lifeboat\` + name }

// Windows Task Scheduler XML (schema version 1.2, Windows Vista and later),
// elements in the order Windows itself exports them.
type wTask struct {
	XMLName    xml.Name     `xml:"Task"`
	Version    string       `xml:"version,attr"`
	Xmlns      string       `xml:"xmlns,attr"`
	Reg        wReg         `xml:"RegistrationInfo"`
	Triggers   wTriggers    `xml:"Triggers"`
	Principals []wPrincipal `xml:"Principals>Principal"`
	Settings   wSettings    `xml:"Settings"`
	Actions    wActions     `xml:"Actions"`
}

type wReg struct {
	Description string `xml:"Description"`
	Author      string `xml:"Author"`
	URI         string `xml:"URI"`
}

type wTriggers struct {
	Time     []wTimeTrigger     `xml:"TimeTrigger"`
	Calendar []wCalendarTrigger `xml:"CalendarTrigger"`
	Boot     []wBootTrigger     `xml:"BootTrigger"`
	Logon    []wLogonTrigger    `xml:"LogonTrigger"`
	Event    []wEventTrigger    `xml:"EventTrigger"`
}

type wRepetition struct {
	Interval          string `xml:"Interval"`
	Duration          string `xml:"Duration"`
	StopAtDurationEnd bool   `xml:"StopAtDurationEnd"`
}

type wTimeTrigger struct {
	StartBoundary string `xml:"StartBoundary"`
	Enabled       bool   `xml:"Enabled"`
}

type wCalendarTrigger struct {
	Repetition    *wRepetition `xml:"Repetition,omitempty"`
	StartBoundary string       `xml:"StartBoundary"`
	Enabled       bool         `xml:"Enabled"`
	ByDay         *wByDay      `xml:"ScheduleByDay,omitempty"`
	ByWeek        *wByWeek     `xml:"ScheduleByWeek,omitempty"`
	ByMonth       *wByMonth    `xml:"ScheduleByMonth,omitempty"`
}

type wByDay struct {
	DaysInterval int `xml:"DaysInterval"`
}

type wByWeek struct {
	DaysOfWeek    wDays `xml:"DaysOfWeek"`
	WeeksInterval int   `xml:"WeeksInterval"`
}

// wDays is a list of empty elements named for days or months
// (<Monday/><Friday/>).
type wDays struct {
	Days []xml.Name
}

func (d wDays) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, n := range d.Days {
		if err := e.EncodeToken(xml.StartElement{Name: n}); err != nil {
			return err
		}
		if err := e.EncodeToken(xml.EndElement{Name: n}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

func (d *wDays) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			d.Days = append(d.Days, xml.Name{Local: t.Name.Local})
			if err := dec.Skip(); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

type wByMonth struct {
	DaysOfMonth []string `xml:"DaysOfMonth>Day"`
	Months      wDays    `xml:"Months"`
}

type wBootTrigger struct {
	Enabled bool   `xml:"Enabled"`
	Delay   string `xml:"Delay"`
}

type wLogonTrigger struct {
	Enabled bool `xml:"Enabled"`
}

type wEventTrigger struct {
	Enabled      bool   `xml:"Enabled"`
	Subscription string `xml:"Subscription"`
}

type wPrincipal struct {
	ID       string `xml:"id,attr"`
	UserID   string `xml:"UserId"`
	RunLevel string `xml:"RunLevel"`
}

type wSettings struct {
	MultipleInstancesPolicy    string `xml:"MultipleInstancesPolicy"`
	DisallowStartIfOnBatteries bool   `xml:"DisallowStartIfOnBatteries"`
	StopIfGoingOnBatteries     bool   `xml:"StopIfGoingOnBatteries"`
	AllowHardTerminate         bool   `xml:"AllowHardTerminate"`
	StartWhenAvailable         bool   `xml:"StartWhenAvailable"`
	RunOnlyIfNetworkAvailable  bool   `xml:"RunOnlyIfNetworkAvailable"`
	AllowStartOnDemand         bool   `xml:"AllowStartOnDemand"`
	Enabled                    bool   `xml:"Enabled"`
	Hidden                     bool   `xml:"Hidden"`
	RunOnlyIfIdle              bool   `xml:"RunOnlyIfIdle"`
	WakeToRun                  bool   `xml:"WakeToRun"`
	ExecutionTimeLimit         string `xml:"ExecutionTimeLimit"`
	Priority                   int    `xml:"Priority"`
}

type wActions struct {
	Context string  `xml:"Context,attr"`
	Exec    []wExec `xml:"Exec"`
}

type wExec struct {
	Command   string `xml:"Command"`
	Arguments string `xml:"Arguments"`
}

// TaskNamespace is Task Scheduler's XML namespace.
const TaskNamespace = "http://schemas.microsoft.com/windows/2004/02/mit/task"

// Event queries for the event triggers: Windows logs no "shutdown" or
// "disk plugged in" trigger of its own. User32 1074 is logged when a
// shutdown or restart begins; Partition/Diagnostic 1006 when a disk
// arrives (Windows 10 and later, on by default).
const (
	shutdownQuery = `<QueryList><Query Id="0" Path="System"><Select Path="System">*[System[Provider[@Name='User32'] and EventID=1074]]</Select></Query></QueryList>`
	usbQuery      = `<QueryList><Query Id="0" Path="Microsoft-Windows-Partition/Diagnostic"><Select Path="Microsoft-Windows-Partition/Diagnostic">*[System[EventID=1006]]</Select></Query></QueryList>`
)

// winArg quotes one argument as Windows programs split their command
// line (CommandLineToArgvW).
func winArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for _, c := range s {
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteRune(c)
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}

// WindowsTask renders a task's schedules as a Task Scheduler definition
// (UTF-16 with a byte-order mark, as schtasks /Create /XML reads it): run
// as SYSTEM with the highest privileges, a missed time run as soon as
// possible (StartWhenAvailable, unless missed: skip), never two at once,
// on batteries too, no time limit. from is the day the calendar triggers
// start counting.
func WindowsTask(t *Task, exe string, from time.Time) []byte {
	w := wTask{Version: "1.2", Xmlns: TaskNamespace,
		Reg:        wReg{Description: "Lifeboat backup task " + t.Name + orDefault(": "+t.Description, ""), Author: "Lifeboat", URI: TaskPath(t.Name)},
		Principals: []wPrincipal{{ID: "Author", UserID: "S-1-5-18", RunLevel: "HighestAvailable"}},
		Settings: wSettings{MultipleInstancesPolicy: "IgnoreNew", AllowHardTerminate: true, StartWhenAvailable: t.Missed != "skip",
			AllowStartOnDemand: true, Enabled: true, ExecutionTimeLimit: "PT0S", Priority: 7},
	}
	if t.Description == "" {
		w.Reg.Description = "Lifeboat backup task " + t.Name
	}
	day := from.Format("2006-01-02")
	boundary := func(c Clock) string { return fmt.Sprintf("%sT%02d:%02d:00", day, int(c)/60, int(c)%60) }
	weekday := []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	months := wDays{}
	for m := time.January; m <= time.December; m++ {
		months.Days = append(months.Days, xml.Name{Local: m.String()})
	}
	event := ""
	for _, s := range t.Schedule {
		tr, err := ParseTrigger(s)
		if err != nil {
			continue
		}
		switch tr.Kind {
		case "once":
			w.Triggers.Time = append(w.Triggers.Time, wTimeTrigger{StartBoundary: tr.Date.Format("2006-01-02") + boundary(tr.At[0])[10:], Enabled: true})
		case "daily", "weekly", "monthly":
			for _, c := range tr.At {
				ct := wCalendarTrigger{StartBoundary: boundary(c), Enabled: true}
				switch tr.Kind {
				case "daily":
					ct.ByDay = &wByDay{DaysInterval: 1}
				case "weekly":
					ct.ByWeek = &wByWeek{WeeksInterval: 1}
					for _, d := range tr.Weekdays {
						ct.ByWeek.DaysOfWeek.Days = append(ct.ByWeek.DaysOfWeek.Days, xml.Name{Local: weekday[d]})
					}
				case "monthly":
					ct.ByMonth = &wByMonth{Months: months}
					for _, d := range tr.MonthDays {
						if d > 0 {
							ct.ByMonth.DaysOfMonth = append(ct.ByMonth.DaysOfMonth, fmt.Sprint(d))
						}
					}
					if slices.Contains(tr.MonthDays, 0) {
						ct.ByMonth.DaysOfMonth = append(ct.ByMonth.DaysOfMonth, "Last")
					}
				}
				w.Triggers.Calendar = append(w.Triggers.Calendar, ct)
			}
		case "every":
			end := tr.To
			if end == 0 {
				end = 24 * 60
			}
			ct := wCalendarTrigger{StartBoundary: boundary(tr.From), Enabled: true, ByDay: &wByDay{DaysInterval: 1},
				Repetition: &wRepetition{Interval: isoDuration(tr.Every), Duration: isoDuration(time.Duration(end-tr.From) * time.Minute)}}
			w.Triggers.Calendar = append(w.Triggers.Calendar, ct)
		case "startup":
			w.Triggers.Boot = append(w.Triggers.Boot, wBootTrigger{Enabled: true, Delay: "PT2M"})
		case "logon":
			w.Triggers.Logon = append(w.Triggers.Logon, wLogonTrigger{Enabled: true})
		case "shutdown":
			w.Triggers.Event = append(w.Triggers.Event, wEventTrigger{Enabled: true, Subscription: shutdownQuery})
		case "usb":
			event = "usb"
			w.Triggers.Event = append(w.Triggers.Event, wEventTrigger{Enabled: true, Subscription: usbQuery})
		}
	}
	var args []string
	for _, a := range runArgs(t, event) {
		args = append(args, winArg(a))
	}
	w.Actions = wActions{Context: "Author", Exec: []wExec{{Command: exe, Arguments: strings.Join(args, " ")}}}
	b, _ := xml.MarshalIndent(w, "", "  ")
	text := `<?xml version="1.0" encoding="UTF-16"?>` + "\r\n" + strings.ReplaceAll(string(b), "\n", "\r\n") + "\r\n"
	u := utf16.Encode([]rune(text))
	out := []byte{0xff, 0xfe}
	for _, c := range u {
		out = append(out, byte(c), byte(c>>8))
	}
	return out
}

// isoDuration is d as an XML duration (PT4H, PT1H30M).
func isoDuration(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	s := "PT"
	if h > 0 {
		s += fmt.Sprintf("%dH", h)
	}
	if m > 0 || h == 0 {
		s += fmt.Sprintf("%dM", m)
	}
	return s
}
