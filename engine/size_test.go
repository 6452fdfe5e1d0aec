package engine

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"512": 512, "4K": 4 << 10, "4k": 4 << 10, "50M": 50 << 20, "60G": 60 << 30, "60GB": 60 << 30, "60GiB": 60 << 30,
		"60gib": 60 << 30, "1.5T": 3 << 39, " 2G ": 2 << 30, "512MiB": 512 << 20,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-4G", "G", "4X", "4 G G", "99999999T"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}
