package fsmap

import (
	"cmp"
	"slices"
)

// cover answers whether a byte range lies inside a finished map (sorted,
// merged ranges): the check every filesystem's reference walk makes, so
// that nothing the filesystem still points at is left out of the map.
type cover []Range

// has reports whether [off, off+n) lies wholly inside the map. Merged
// ranges never touch, so a covered range lies inside one of them.
func (c cover) has(off, n int64) bool {
	i, found := slices.BinarySearchFunc(c, off, func(r Range, off int64) int { return cmp.Compare(r.Off, off) })
	if !found {
		if i == 0 {
			return false
		}
		i--
	}
	r := c[i]
	return off >= r.Off && n <= r.Off+r.Len-off
}

// budget bounds the work of a reference walk over untrusted metadata:
// every block or cluster read or followed costs one. A sound filesystem
// references each block at most once, so a budget of the volume's block
// count (plus slack) is never exhausted by one; loops and cross-links in
// garbage exhaust it instead of hanging.
type budget struct{ left int64 }

func (b *budget) spend(n int64) bool {
	if n < 0 || n > b.left {
		b.left = 0
		return false
	}
	b.left -= n
	return true
}
