package opt

import "testing"

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		f    Fix
		want string
	}{
		{Text("choose another disk"), "choose another disk"},
		{With("restore without {}", Use{Option: Delta}), "restore without --delta"},
		{With("restore to a GPT disk ({}, the default) or one by one with {}", Use{Table, "gpt"}, Use{Partition, "N"}),
			"restore to a GPT disk (--table gpt, the default) or one by one with --partition N"},
		{With("too few {} {}", Use{Option: Size}), "too few --size {}"},
		{Text("nothing was written").And(With("add {}", Use{Partition, "N"})), "nothing was written; add --partition N"},
		{Fix{}.And(Text("a")), "a"},
		{Fix{}, ""},
		{With("write a file with {}", Use{Output, "FILE"}), "write a file with -o FILE"},
	} {
		if got := c.f.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.f, got, c.want)
		}
	}
	f := With("give {}", Use{Size, "3=20G"})
	if !f.Names(Size) || f.Names(Layout) || f.IsZero() || !(Fix{}).IsZero() {
		t.Errorf("Names/IsZero wrong for %+v", f)
	}
	if got := f.Format(func(u Use) string { return "size " + u.Value }); got != "give size 3=20G" {
		t.Errorf("Format = %q", got)
	}
}
