package tui

import (
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
)

// The network screen lists the interfaces; in the rescue environment it
// asks for DHCP again (d) or sets an address by hand (m).

type netMsg struct {
	note string
	err  error
}

func (m *Model) gotNet(msg netMsg) {
	m.note, m.err = msg.note, ""
	if msg.err != nil {
		m.err = msg.err.Error()
	}
	m.loadIfaces()
}

func (m *Model) loadIfaces() {
	ifs, err := m.o.Interfaces()
	m.ifaces = ifs
	if err != nil {
		m.err = err.Error()
	}
	var items []item
	for _, i := range ifs {
		state := "down"
		if i.Up {
			state = "up"
		}
		addrs := strings.Join(i.Addrs, " ")
		if addrs == "" {
			addrs = "no address"
		}
		items = append(items, item{label: fmt.Sprintf("%-10s %-17s %-4s %s", i.Name, i.MAC, state, addrs), key: i.Name})
	}
	cur := 0
	if l := m.lists[scNetwork]; l != nil {
		cur = l.cur
	}
	l := newList(items...)
	if cur < len(items) {
		l.cur = cur
	}
	m.lists[scNetwork] = l
}

func (m *Model) networkKey(k tea.KeyMsg) tea.Cmd {
	l := m.lists[scNetwork]
	l.update(k)
	it, ok := l.selected()
	switch k.String() {
	case "r":
		m.loadIfaces()
		return nil
	case "d", "m":
		if m.o.Network == nil {
			m.err = "On a running system the network belongs to the system's own network manager; this screen only lists it."
			return nil
		}
		if !ok {
			return nil
		}
		if k.String() == "m" {
			m.iface = it.key
			m.push(scNetManual)
			m.in = input{}
			return nil
		}
		dhcp, name := m.o.Network.DHCP, it.key
		m.note = "Asking for an address on " + name + " ..."
		return func() tea.Msg {
			err := dhcp(name)
			return netMsg{note: "DHCP requested on " + name + "; press r to see the address once it arrives.", err: err}
		}
	}
	return nil
}

func (m *Model) manualKey(k tea.KeyMsg) tea.Cmd {
	v, enter := textKey(&m.in, k)
	if !enter {
		return nil
	}
	f := strings.Fields(v)
	if len(f) < 1 || len(f) > 2 || !strings.Contains(f[0], "/") {
		m.err = "Write ADDRESS/PREFIX and optionally a gateway, e.g. 192.168.1.20/24 192.168.1.1"
		return nil
	}
	gw := ""
	if len(f) == 2 {
		gw = f[1]
	}
	iface, set := m.iface, m.o.Network.SetAddress
	m.back()
	return func() tea.Msg {
		err := set(iface, f[0], gw)
		return netMsg{note: fmt.Sprintf("%s: address %s set.", iface, f[0]), err: err}
	}
}

func (m *Model) networkBody(rows int) []string {
	intro := "Network interfaces:"
	if len(m.ifaces) == 0 {
		intro = "No network interfaces were found."
	}
	after := "d asks for an address by DHCP again, m sets one by hand."
	if m.o.Network == nil {
		after = "Read-only: on a running system the network belongs to the system's own network manager."
	}
	return m.listBody(m.lists[scNetwork], intro, rows, after)
}
