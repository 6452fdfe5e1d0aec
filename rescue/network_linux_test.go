//go:build linux

package rescue

import (
	"errors"
	"strings"
	"testing"
)

// The message of a job that found no network says what happened on each
// link: no card, no link, no request sent, no reply, or no lease.
func TestNetworkProblem(t *testing.T) {
	n := newNetState()
	if p := n.problem(); !strings.Contains(p, "no network card") {
		t.Errorf("no links: %q", p)
	}
	for _, tc := range []struct {
		st   linkState
		want string
	}{
		{linkState{name: "eth0"}, "eth0 has no link"},
		{linkState{name: "eth1", carrier: true, err: errors.New("sendto: network is down")}, "eth1: no DHCP request could be sent (sendto: network is down)"},
		{linkState{name: "eth2", carrier: true, sent: 6}, "eth2: 6 DHCP requests sent, no reply from a DHCP server"},
		{linkState{name: "eth3", carrier: true, sent: 6, replies: 2, err: errors.New("got NAK")}, "eth3: 6 DHCP requests sent and 2 replies, but no lease (got NAK)"},
		{linkState{name: "eth4", carrier: true, sent: 2, replies: 2, addr: "10.0.0.5/24"}, "eth4 has 10.0.0.5/24"},
	} {
		l, ok := n.claim(tc.st.name)
		if !ok {
			t.Fatalf("%s claimed twice", tc.st.name)
		}
		tc.st.running = true
		n.update(l, func(l *linkState) { *l = tc.st })
		if _, again := n.claim(tc.st.name); again {
			t.Errorf("%s: a second DHCP client may start while one runs", tc.st.name)
		}
		if p := n.problem(); !strings.Contains(p, tc.want) {
			t.Errorf("%s: %q does not say %q", tc.st.name, p, tc.want)
		}
	}
}
