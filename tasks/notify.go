package tasks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	mail "github.com/wneessen/go-mail"

	"github.com/lifeboat-rescue/lifeboat/engine"
)

// Target is where a run's summary goes.
//
//	smtp://[USER@]HOST[:PORT]?to=ADDR[,ADDR]&from=ADDR[&password-file=FILE][&tls=starttls|tls|none][&ca-file=FILE]
//	smtps://…                (TLS from the first byte, port 465)
//	https://HOST/PATH, http://…   (a webhook: the run's record POSTed as JSON)
type Target struct {
	URL  *url.URL
	Mail bool
	// For mail:
	Host         string
	Port         int
	User         string
	PasswordFile string
	To           []string
	From         string
	TLS          string // starttls (default), tls, none
	CAFile       string
}

// ParseNotify reads a notification target.
func ParseNotify(s string) (*Target, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q: give smtp://HOST?to=ADDR (e-mail) or https://HOST/PATH (a webhook)", redact(s))
	}
	if _, set := u.User.Password(); set {
		return nil, fmt.Errorf("%q: a password is never written in the configuration; put it in a file only root can read and add password-file=FILE", redact(s))
	}
	t := &Target{URL: u}
	switch u.Scheme {
	case "http", "https":
		return t, nil
	case "smtp", "smtps":
	default:
		return nil, fmt.Errorf("%q: unknown scheme %q; use smtp, smtps, https or http", redact(s), u.Scheme)
	}
	t.Mail, t.Host = true, u.Hostname()
	q := u.Query()
	for k := range q {
		switch k {
		case "to", "from", "password-file", "tls", "ca-file":
		default:
			return nil, fmt.Errorf("%q: unknown setting %q; use to, from, password-file, tls, ca-file", redact(s), k)
		}
	}
	t.TLS = q.Get("tls")
	if u.Scheme == "smtps" {
		if t.TLS != "" && t.TLS != "tls" {
			return nil, fmt.Errorf("%q: smtps is TLS from the first byte; drop tls=%s", redact(s), t.TLS)
		}
		t.TLS = "tls"
	}
	switch t.TLS {
	case "":
		t.TLS = "starttls"
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("%q: tls=%s: use starttls, tls or none", redact(s), t.TLS)
	}
	t.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[t.TLS]
	if p := u.Port(); p != "" {
		if t.Port, err = strconv.Atoi(p); err != nil || t.Port < 1 || t.Port > 65535 {
			return nil, fmt.Errorf("%q: port %s is not a port number", redact(s), p)
		}
	}
	t.User = u.User.Username()
	t.PasswordFile, t.CAFile = q.Get("password-file"), q.Get("ca-file")
	if t.User != "" && t.PasswordFile == "" {
		return nil, fmt.Errorf("%q: user %s needs password-file=FILE (a file only root can read, holding the SMTP password)", redact(s), t.User)
	}
	if t.PasswordFile != "" && t.User == "" {
		return nil, fmt.Errorf("%q: password-file without a user: write smtp://USER@%s…", redact(s), u.Host)
	}
	if t.User != "" && t.TLS == "none" {
		return nil, fmt.Errorf("%q: a password is not sent without TLS; use tls=starttls or tls", redact(s))
	}
	for _, a := range strings.Split(q.Get("to"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			t.To = append(t.To, a)
		}
	}
	if len(t.To) == 0 {
		return nil, fmt.Errorf("%q: no recipient; add ?to=ADDRESS", redact(s))
	}
	t.From = q.Get("from")
	if t.From == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		t.From = "lifeboat@" + host
	}
	return t, nil
}

// redact hides anything after a user name's colon in a URL, should one be
// there, for messages and the log.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, set := u.User.Password(); set {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Notify sends a run's summary to one target.
func Notify(ctx context.Context, target string, rec *Record) error {
	t, err := ParseNotify(target)
	if err != nil {
		return err
	}
	if t.Mail {
		return sendMail(ctx, t, rec)
	}
	return postHook(ctx, t, rec)
}

// Subject is the one-line summary a notification carries.
func (rec *Record) Subject() string {
	host, _ := os.Hostname()
	switch rec.Result {
	case "success":
		return fmt.Sprintf("Lifeboat on %s: task %s succeeded (%s backup, %s stored)", host, rec.Task, rec.Kind, human(rec.Stored))
	case "skipped":
		return fmt.Sprintf("Lifeboat on %s: task %s was SKIPPED", host, rec.Task)
	}
	return fmt.Sprintf("Lifeboat on %s: task %s FAILED", host, rec.Task)
}

// Summary is the run as text, for e-mail and the log command.
func (rec *Record) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Task:     %s\nResult:   %s\n", rec.Task, rec.Result)
	if rec.Error != "" {
		fmt.Fprintf(&b, "Error:    %s\n", rec.Error)
	}
	fmt.Fprintf(&b, "Started:  %s\nEnded:    %s (%s)\n", rec.Start.Format(time.RFC3339), rec.End.Format(time.RFC3339), rec.End.Sub(rec.Start).Round(time.Second))
	if rec.Kind != "" {
		fmt.Fprintf(&b, "Kind:     %s\n", rec.Kind)
	}
	if rec.Source != "" {
		fmt.Fprintf(&b, "Source:   %s (%s, %s read)\n", rec.Source, human(rec.SourceSize), human(rec.Read))
	}
	if rec.Image != "" {
		fmt.Fprintf(&b, "Image:    %s (%s stored)\n", rec.Image, human(rec.Stored))
	}
	if rec.Merged != "" {
		fmt.Fprintf(&b, "Merged:   %s\n", rec.Merged)
	}
	for _, d := range rec.Deleted {
		fmt.Fprintf(&b, "Deleted:  %s\n", d)
	}
	for _, w := range rec.Warnings {
		fmt.Fprintf(&b, "Warning:  %s\n", w)
	}
	for _, h := range []struct {
		name string
		h    *Hook
	}{{"Pre", rec.Pre}, {"Post", rec.Post}} {
		if h.h == nil {
			continue
		}
		state := "ok"
		if !h.h.OK() {
			state = h.h.Outcome()
		}
		fmt.Fprintf(&b, "%s:      %s: %s\n", h.name, h.h.Command, state)
		if o := strings.TrimSpace(h.h.Output); o != "" {
			fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(o, "\n", "\n  "))
		}
	}
	return b.String()
}

func human(n int64) string { return humanize.IBytes(uint64(max(n, 0))) }

func sendMail(ctx context.Context, t *Target, rec *Record) error {
	opts := []mail.Option{mail.WithPort(t.Port), mail.WithTimeout(30 * time.Second)}
	tc := &tls.Config{ServerName: t.Host, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return fmt.Errorf("ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ca-file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	opts = append(opts, mail.WithTLSConfig(tc))
	switch t.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if t.User != "" {
		pw, err := engine.ReadPasswordFile(t.PasswordFile)
		if err != nil {
			return fmt.Errorf("SMTP %w", err)
		}
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(t.User), mail.WithPassword(string(pw)))
	}
	c, err := mail.NewClient(t.Host, opts...)
	if err != nil {
		return err
	}
	m := mail.NewMsg()
	if err := m.From(t.From); err != nil {
		return fmt.Errorf("from %q: %w", t.From, err)
	}
	if err := m.To(t.To...); err != nil {
		return fmt.Errorf("to %q: %w", t.To, err)
	}
	m.Subject(rec.Subject())
	m.SetDate()
	m.SetBodyString(mail.TypeTextPlain, rec.Summary())
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("SMTP %s: %w", net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), err)
	}
	return nil
}

// Webhook is the JSON a webhook receives.
type Webhook struct {
	Subject string  `json:"subject"`
	Host    string  `json:"host"`
	Record  *Record `json:"run"`
}

func postHook(ctx context.Context, t *Target, rec *Record) error {
	host, _ := os.Hostname()
	b, err := json.Marshal(Webhook{Subject: rec.Subject(), Host: host, Record: rec})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL.String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lifeboat")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s answered %s: %s", t.URL.Redacted(), resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
