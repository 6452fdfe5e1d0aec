package tui

import (
	"slices"
	"testing"
)

// Explore image: image → partition (one without a filesystem cannot be
// picked) → browse (Enter opens, Space marks, Backspace goes up) → x →
// the folder → progress → result; the engine gets the marked paths.
func TestExploreWizard(t *testing.T) {
	f := newFake()
	h := newHarness(t, fakeOptions(f))
	h.keys("<down><down><down><down><enter>")
	h.shows("Pick the image to explore")
	h.keys("<enter>")
	h.waitFor("Pick the partition whose files you want")
	h.golden("explore-1-partition")
	h.keys("<down><down><enter>") // 3 cannot be picked: the cursor stays on 2
	h.waitFor("Partition 2: /")
	h.golden("explore-2-root")
	h.keys("<enter>") // etc/ (folders first, by name)
	h.shows("fstab")
	h.keys("<backspace><down><enter><down><enter>") // home/, then ann/ (after ../)
	h.shows("thesis.odt")
	h.keys("<down><down> ") // thesis.odt, after ../ and photos/
	h.shows("(1 item marked)")
	h.keys("<backspace><backspace><up> ") // back at home/; etc/ marked
	h.golden("explore-3-marked")
	h.keys("x")
	h.golden("explore-4-dest")
	h.complete(f, "<enter>", "Explore image finished")
	h.golden("explore-5-result")
	if len(f.extracts) != 1 {
		t.Fatalf("%d extracts", len(f.extracts))
	}
	o := f.extracts[0]
	if o.Partition != 2 || o.Dest != "/mnt/sdc1/images" || !slices.Equal(o.Paths, []string{"/etc", "/home/ann/thesis.odt"}) || o.Image != "/mnt/sdc1/pc1.lbi" {
		t.Errorf("extract options %+v", o)
	}
}
