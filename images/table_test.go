package images

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-rescue/lifeboat/engine/layout"
)

// TestTableOldImages reads images written before images.Table used
// layout.TableType (the fuzz seed corpus, committed in testdata): the
// stored "gpt" is layout.GPT, and writing the metadata again gives the
// same JSON.
func TestTableOldImages(t *testing.T) {
	for _, name := range []string{"plain-normal", "aes", "xchacha"} {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzOpen", name))
			if err != nil {
				t.Fatal(err)
			}
			lit := strings.TrimSuffix(strings.TrimPrefix(string(body), "go test fuzz v1\n[]byte("), ")\n")
			raw, err := strconv.Unquote(lit)
			if err != nil {
				t.Fatal(err)
			}
			im, err := OpenReaderAt(bytes.NewReader([]byte(raw)), int64(len(raw)), name, OpenOptions{Password: pw("pw")})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			tab := im.Meta.Streams[0].Table
			if tab == nil || tab.Type != layout.GPT || !tab.Type.Known() {
				t.Fatalf("table = %+v, want a GPT", tab)
			}
			lt := tab.Layout(512)
			if lt.Type != layout.GPT || len(lt.Partitions) != 1 || lt.Partitions[0].Start != 1<<20 {
				t.Errorf("Layout() = %+v", lt)
			}
			b, err := json.Marshal(tab)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(`"type":"gpt"`)) {
				t.Errorf("re-encoded table %s does not store \"gpt\"", b)
			}
		})
	}
}

// TestTableRoundTrip: NewTable and Table.Layout keep every field both
// forms have.
func TestTableRoundTrip(t *testing.T) {
	for _, tt := range []layout.TableType{layout.MBR, layout.GPT} {
		lt := &layout.Table{Type: tt, DiskGUID: "1234ABCD", SectorSize: 4096,
			Partitions: []layout.Partition{{Number: 5, Start: 1 << 20, Size: 2 << 20, Type: "0x83", Name: "n", GUID: "g", Bootable: true, Attributes: 4}},
			Raw:        []layout.RawRange{{Offset: 0, Data: []byte{1, 2}}}}
		got := NewTable(lt).Layout(4096)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(lt)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%v: round trip gave %s, want %s", tt, gb, wb)
		}
	}
}
