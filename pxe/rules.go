package pxe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rules decide per MAC address what a client boots. The file is YAML:
//
//	clients:
//	  - mac: "52:54:00:12:34:56"
//	    args: "lifeboat.action=restore lifeboat.image=http://{server}/images/pc1.lbi lifeboat.target=first-empty-disk lifeboat.done=poweroff"
//	  - mac: "*"          # everyone else
//	    args: ""          # boot to the menu
//
// The first entry whose mac matches wins; mac is a MAC address, "*", or a
// pattern such as "52:54:00:*" (case does not matter). args are rescue
// kernel parameters; {server} becomes the server's address (with :port
// when not 80) and {mac} the client's MAC address.
//
// credentials names a file on the server with the keys of the job's
// s3:// or smb:// image (an AWS credentials file, or username= and
// password= lines). The client's kernel gets a URL of it that works once
// per boot, for that client only (its boot token and its address, as for
// reports); the keys are never in the arguments, on the console or in the
// log:
//
//   - mac: "52:54:00:12:34:57"
//     args: "lifeboat.action=restore lifeboat.image=s3://backups/pc2.lbi lifeboat.s3-endpoint=http://nas:7070 lifeboat.target=first-empty-disk"
//     credentials: /etc/lifeboat/s3.cred
type Rules struct {
	Clients []Rule `yaml:"clients"`
}

// Rule is one entry of a rules file.
type Rule struct {
	MAC  string `yaml:"mac"`
	Args string `yaml:"args"`
	// Credentials is a file on the server handed to the client once per
	// boot (lifeboat.credentials=http://{server}/api/credentials/…).
	Credentials string `yaml:"credentials"`
	// Line is where the entry starts in the file, for messages.
	Line int `yaml:"-"`
}

// LoadRules reads and checks a rules file.
func LoadRules(file string) (*Rules, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	r, err := ParseRules(b)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", file, err)
	}
	return r, nil
}

// ParseRules reads and checks the YAML of a rules file. Errors name the
// line and say how to fix it.
func ParseRules(b []byte) (*Rules, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New(`the file is empty; write "clients:" followed by entries with mac and args`)
		}
		return nil, fmt.Errorf("%w; check the indentation and quote MAC addresses and args", err)
	}
	var r Rules
	dec = yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w; each entry under clients: has only mac:, args: and credentials:", err)
	}
	lines := entryLines(&doc)
	if r.Clients == nil && len(lines) == 0 {
		return nil, errors.New(`no "clients:" list; start the file with "clients:" followed by entries with mac and args`)
	}
	for i := range r.Clients {
		c := &r.Clients[i]
		if i < len(lines) {
			c.Line = lines[i]
		}
		c.MAC = strings.ToLower(strings.TrimSpace(c.MAC))
		switch {
		case c.MAC == "":
			return nil, fmt.Errorf(`line %d: entry has no mac; write mac: "52:54:00:12:34:56" or mac: "*" for everyone else`, c.Line)
		case strings.ContainsAny(c.MAC, "*?["):
			if _, err := path.Match(c.MAC, ""); err != nil {
				return nil, fmt.Errorf(`line %d: mac pattern %q: %v; use * for any characters, e.g. "52:54:00:*"`, c.Line, c.MAC, err)
			}
		default:
			hw, err := net.ParseMAC(c.MAC)
			if err != nil || len(hw) != 6 {
				return nil, fmt.Errorf(`line %d: mac %q is not a MAC address; write it as "52:54:00:12:34:56" (quoted), or "*"`, c.Line, c.MAC)
			}
			c.MAC = hw.String()
		}
		for _, ch := range c.Args {
			if ch < ' ' || ch == 0x7f {
				return nil, fmt.Errorf("line %d: args contain a control character (%q); write all kernel parameters on one line", c.Line, ch)
			}
		}
		if c.Credentials != "" {
			switch {
			case strings.Contains(c.Args, "lifeboat.credentials="):
				return nil, fmt.Errorf("line %d: both credentials: and lifeboat.credentials= in args; keep one", c.Line)
			case !filepath.IsAbs(c.Credentials):
				return nil, fmt.Errorf("line %d: credentials %q: give the absolute path of the file on this server", c.Line, c.Credentials)
			}
		}
		if strings.Contains(c.Args, "${") {
			return nil, fmt.Errorf("line %d: args contain ${, which iPXE would expand; use {server} and {mac} instead", c.Line)
		}
		if strings.ContainsAny(c.Args, `'\`) {
			// GRUB (Secure Boot clients) passes them to the kernel
			// with a backslash before each.
			return nil, fmt.Errorf(`line %d: args contain a single quote or a backslash, which GRUB would pass to the kernel escaped; leave them out (double quotes keep a value with spaces whole)`, c.Line)
		}
	}
	return &r, nil
}

// entryLines finds the line of each entry of the clients list.
func entryLines(doc *yaml.Node) []int {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "clients" && m.Content[i+1].Kind == yaml.SequenceNode {
			var ls []int
			for _, e := range m.Content[i+1].Content {
				ls = append(ls, e.Line)
			}
			return ls
		}
	}
	return nil
}

// Match returns the first rule that matches mac, if any.
func (r *Rules) Match(mac net.HardwareAddr) (Rule, bool) {
	if r == nil {
		return Rule{}, false
	}
	s := strings.ToLower(mac.String())
	for _, c := range r.Clients {
		if c.MAC == s {
			return c, true
		}
		if ok, _ := path.Match(c.MAC, s); ok {
			return c, true
		}
	}
	return Rule{}, false
}
