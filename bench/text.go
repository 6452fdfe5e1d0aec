package bench

import (
	"math/rand/v2"
	"slices"
)

// vocabulary is a set of made-up words with Zipf-like frequencies, so that
// text segments look to a compressor like prose: a skewed alphabet, common
// short words, and short repeats everywhere but no long ones. Every word is
// drawn afresh, never copied from a pool of ready-made sentences, which a
// compressor with a large window would find and shrink far below real text.
type vocabulary struct {
	words []byte   // all words, concatenated
	off   []uint32 // word i is words[off[i]:off[i+1]]
	// pick maps 16 random bits to a word index, word i taking a share of
	// the slots proportional to 1/(i+zipfShift): rank-frequency of prose.
	pick [1 << 16]uint16
}

const zipfShift = 2 // Zipf–Mandelbrot offset: flattens the very top ranks a little

var (
	onsets = []string{"", "", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "y", "z",
		"br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "pl", "pr", "sc", "sh", "sl", "sp", "st", "str", "th", "tr", "wh"}
	nuclei = []string{"a", "a", "e", "e", "e", "i", "i", "o", "o", "u", "ai", "ea", "ee", "ou", "oo", "ie", "y"}
	codas  = []string{"", "", "", "n", "r", "s", "t", "l", "m", "d", "nd", "ng", "st", "rt", "ck", "ll", "ss", "th", "x"}
)

// newVocabulary makes vocabSize distinct words from seed. Frequent words are
// short, as in natural languages.
func newVocabulary(seed uint64) *vocabulary {
	r := rand.NewPCG(seed, 0x766f636162756c61) // "vocabula"
	pickFrom := func(list []string) string { return list[r.Uint64()%uint64(len(list))] }
	v := &vocabulary{off: make([]uint32, 1, vocabSize+1)}
	seen := make(map[string]bool, vocabSize)
	for len(seen) < vocabSize {
		rank := len(seen)
		syllables := 1 + int(r.Uint64()%4)
		switch {
		case rank < 64:
			syllables = 1
		case rank < 512:
			syllables = 1 + int(r.Uint64()%2)
		}
		var w []byte
		for range syllables {
			w = append(w, pickFrom(onsets)...)
			w = append(w, pickFrom(nuclei)...)
			w = append(w, pickFrom(codas)...)
		}
		if seen[string(w)] {
			continue
		}
		seen[string(w)] = true
		v.words = append(v.words, w...)
		v.off = append(v.off, uint32(len(v.words)))
	}

	// Integer weights keep the table identical on every architecture.
	var weight [vocabSize]uint64
	var total uint64
	for i := range weight {
		weight[i] = (1 << 40) / uint64(i+zipfShift)
		total += weight[i]
	}
	word, cum := 0, weight[0]
	for slot := range v.pick {
		// The slot's midpoint, scaled to the weight total.
		x := (uint64(2*slot+1) * (total >> 17))
		for x >= cum && word < vocabSize-1 {
			word++
			cum += weight[word]
		}
		v.pick[slot] = uint16(word)
	}
	return v
}

// appendText appends exactly n bytes of prose to buf: words separated by
// spaces, some followed by punctuation, sentences starting with a capital,
// lines wrapped near 64 columns and an occasional blank line.
func (v *vocabulary) appendText(buf []byte, n int, r *rand.PCG) []byte {
	start := len(buf)
	buf = slices.Grow(buf, n+textSlack)
	capital, column := true, 0
	for len(buf)-start < n {
		x := r.Uint64()
		i := v.pick[x&0xffff]
		w0 := len(buf)
		buf = append(buf, v.words[v.off[i]:v.off[i+1]]...)
		if capital {
			buf[w0] -= 'a' - 'A'
			capital = false
		}
		switch p := (x >> 16) & 0xff; {
		case p < 20:
			buf = append(buf, ',')
		case p < 36:
			buf = append(buf, '.')
			capital = true
		case p < 38:
			buf = append(buf, '?')
			capital = true
		case p < 40:
			buf = append(buf, ';')
		}
		column += len(buf) - w0 + 1
		switch {
		case capital && (x>>24)&7 == 0:
			buf = append(buf, '\n', '\n')
			column = 0
		case column > 56+int((x>>28)&15):
			buf = append(buf, '\n')
			column = 0
		default:
			buf = append(buf, ' ')
		}
	}
	return buf[:start+n]
}
