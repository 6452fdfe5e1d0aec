package images

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	"github.com/dustin/go-humanize"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Cipher is the AEAD that protects an encrypted image.
type Cipher int

const (
	CipherNone Cipher = iota
	CipherAES256GCM
	CipherXChaCha20Poly1305
)

var cipherNames = []string{"none", "aes-256-gcm", "xchacha20-poly1305"}

func (c Cipher) valid() bool { return c >= 0 && int(c) < len(cipherNames) }

func (c Cipher) String() string {
	if !c.valid() {
		return fmt.Sprintf("cipher(%d)", int(c))
	}
	return cipherNames[c]
}

// ParseCipher accepts the names String returns.
func ParseCipher(s string) (Cipher, error) {
	for i, n := range cipherNames {
		if s == n {
			return Cipher(i), nil
		}
	}
	return 0, fmt.Errorf("unknown cipher %q; use one of %v", s, cipherNames)
}

func (c Cipher) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
func (c *Cipher) UnmarshalText(b []byte) (err error) {
	*c, err = ParseCipher(string(b))
	return err
}

// kdfParams describes how the key-encryption key is derived from the
// password, and holds the data key wrapped under it.
type kdfParams struct {
	Name    string `json:"name"` // "argon2id"
	Salt    []byte `json:"salt"`
	Time    uint32 `json:"time"`
	MemKiB  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
	Nonce   []byte `json:"nonce"` // nonce of the wrapped key
}

// KDFCost sets the Argon2id cost. The zero value means the default
// (3 passes over 64 MiB, 4 lanes: about 0.2 s here).
type KDFCost struct {
	Time   uint32
	MemKiB uint32
}

func (k KDFCost) orDefault() KDFCost {
	if k.Time == 0 {
		k.Time = 3
	}
	if k.MemKiB == 0 {
		k.MemKiB = 64 << 10
	}
	return k
}

// MaxKDF is the highest Argon2id cost a writer accepts and a reader tries:
// 8 passes over 256 MiB, about ten times the default's work (measured on 2
// shared cores: 5.3 s against 0.7 s) and 256 MiB of memory per password
// try; the old bound, 16 passes over 1 GiB, was 85 times. A header asking for more
// was not written by lifeboat, and deriving its key could take minutes and
// more memory than a rescue machine has (an untrusted image must not cost
// more than a wrong password).
var MaxKDF = KDFCost{Time: 8, MemKiB: 256 << 10}

// ErrKDFMemory: deriving the image's key needs more memory than the
// machine has available. Close other programs, or open the image on a
// machine with more memory.
var ErrKDFMemory = errors.New("not enough memory to derive the image's key")

// kdfHeadroom is the memory left to the rest of lifeboat while the key is
// derived (buffers, the decoder, the runtime).
const kdfHeadroom = 16 << 20

// memAvailable says how much memory the machine can give without swapping
// (MemAvailable on Linux); errors.ErrUnsupported where it cannot tell.
// Tests replace it.
var memAvailable = memAvailableBytes

const (
	keyLen          = 32
	kdfThreads      = 4 // the lanes every writer uses
	wrapAD          = "lifeboat-key-v1"
	indexNonceChunk = ^uint64(0)
	indexNonceStrm  = ^uint32(0)
)

func newAEAD(c Cipher, key []byte) (cipher.AEAD, error) {
	switch c {
	case CipherAES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case CipherXChaCha20Poly1305:
		return chacha20poly1305.NewX(key)
	}
	return nil, fmt.Errorf("no AEAD for cipher %v", c)
}

// argon2Key is argon2.IDKey; tests replace it to prove that a refusal
// comes before the cost is paid.
var argon2Key = argon2.IDKey

func deriveKEK(p *kdfParams, password []byte) []byte {
	recycleMemory(int64(p.MemKiB) << 10)
	kek := argon2Key(password, p.Salt, p.Time, p.MemKiB, p.Threads, keyLen)
	// Argon2's memory is garbage now: collected at once, it is what the
	// buffers allocated next reuse, instead of adding to the peak.
	runtime.GC()
	return kek
}

// recycleMemory leaves n bytes of the Go heap free and already mapped, so
// that Argon2's allocation of that size reuses them. x/crypto's Argon2
// XORs every new block into its memory, which it relies on being zero:
// it reads each page before writing it. Memory fresh from the system is
// not cleared by Go, so that read maps the kernel's shared zero page and
// the write then replaces it and flushes the TLB of every CPU the process
// runs on: an interrupt to the other CPUs per 4 KiB page, 16,384 of them
// for the default 64 MiB. In a virtual machine that was 60 % of deriving
// the key (0.25 of 0.41 CPU-s here, measured with perf for issue #19).
// Pages written first fault without any of that, and Go clears recycled
// memory (with stores) before handing it out again.
func recycleMemory(n int64) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	b = nil
	runtime.GC() // frees b's pages to the heap (it also sweeps)
}

// newKey makes a random data key and wraps it under the password.
func newKey(c Cipher, password []byte, cost KDFCost, uuid [16]byte) (aead cipher.AEAD, p *kdfParams, wrapped []byte, err error) {
	p = cost.orDefault().params()
	p.Salt = make([]byte, 16)
	dataKey := make([]byte, keyLen)
	rand.Read(p.Salt)
	rand.Read(dataKey)
	kek, err := newAEAD(c, deriveKEK(p, password))
	if err != nil {
		return nil, nil, nil, err
	}
	p.Nonce = make([]byte, kek.NonceSize())
	rand.Read(p.Nonce)
	ad := append([]byte(wrapAD), uuid[:]...)
	wrapped = kek.Seal(nil, p.Nonce, dataKey, ad)
	// What unwrapKey will demand of the header, checked before it is written.
	if k, err := kek.Open(nil, p.Nonce, wrapped, ad); err != nil || !bytes.Equal(k, dataKey) || !p.valid() {
		return nil, nil, nil, internalError("the wrapped key it would write does not unwrap", err)
	}
	aead, err = newAEAD(c, dataKey)
	return aead, p, wrapped, err
}

// valid: the parameters a reader accepts.
func (p *kdfParams) valid() bool {
	return p.Name == "argon2id" && len(p.Salt) >= 8 && p.Time != 0 && p.Time <= MaxKDF.Time &&
		p.MemKiB >= 8 && p.MemKiB <= MaxKDF.MemKiB && p.Threads != 0 && p.Threads <= kdfThreads
}

// params are the Argon2id parameters of a cost, as a writer records them.
func (k KDFCost) params() *kdfParams {
	return &kdfParams{Name: "argon2id", Time: k.Time, MemKiB: k.MemKiB, Threads: kdfThreads}
}

func (p *kdfParams) String() string {
	return fmt.Sprintf("Argon2id, %d passes over %s, %d threads", p.Time, humanize.IBytes(uint64(int64(p.MemKiB)<<10)), p.Threads)
}

// withinCap: the cost is one a writer makes (MaxKDF, kdfThreads).
func (p *kdfParams) withinCap() bool {
	return p.Name == "argon2id" && p.Time != 0 && p.Time <= MaxKDF.Time && p.MemKiB >= 8 && p.MemKiB <= MaxKDF.MemKiB &&
		p.Threads != 0 && p.Threads <= kdfThreads
}

// capText is MaxKDF as messages show it.
func capText() string {
	return fmt.Sprintf("at most %d passes over %s, %d threads", MaxKDF.Time, humanize.IBytes(uint64(int64(MaxKDF.MemKiB)<<10)), kdfThreads)
}

// checkKDF refuses, before anything is derived or a password is asked
// for, the key derivation of the image name: a cost above what a writer
// makes (a *CorruptError: the header was made by hand or damaged, and
// paying its cost could exhaust the machine) or one that does not fit in
// the memory available (ErrKDFMemory).
func checkKDF(name string, p *kdfParams) error {
	if !p.withinCap() {
		return &CorruptError{Image: name, Part: name, Err: ErrCorrupt,
			What: fmt.Sprintf("its key derivation (%s) is beyond what lifeboat makes (%s); it was not tried", p, capText())}
	}
	return kdfFits(name, p)
}

// kdfFits refuses a derivation that needs more memory than the machine
// has available, naming the image (or the file being written), the cost
// and the memory. Where the memory cannot be measured, MaxKDF is the only
// bound.
func kdfFits(name string, p *kdfParams) error {
	need := int64(p.MemKiB)<<10 + kdfHeadroom
	if avail, err := memAvailable(); err == nil && need > avail {
		return fmt.Errorf("image %s: %w: its key derivation (%s) needs %s of memory and only %s is available; close other programs or use a machine with more memory",
			name, ErrKDFMemory, p, humanize.IBytes(uint64(need)), humanize.IBytes(uint64(avail)))
	}
	return nil
}

// checkNewKDF is checkKDF for a writer: it refuses to make an image that
// a reader would refuse.
func checkNewKDF(name string, p *kdfParams) error {
	if !p.withinCap() {
		return fmt.Errorf("image %s: key derivation %s is beyond what a reader accepts (%s); choose a lower cost", name, p, capText())
	}
	return kdfFits(name, p)
}

// unwrapKey returns the data key's AEAD, or ErrWrongPassword. The caller
// has passed the cost through checkKDF.
func unwrapKey(h *header, uuid [16]byte, password []byte) (cipher.AEAD, error) {
	p := h.KDF
	if !p.valid() {
		return nil, errBadHeader
	}
	kek, err := newAEAD(h.Cipher, deriveKEK(p, password))
	if err != nil {
		return nil, err
	}
	if len(p.Nonce) != kek.NonceSize() {
		return nil, errBadHeader
	}
	key, err := kek.Open(nil, p.Nonce, h.WrappedKey, append([]byte(wrapAD), uuid[:]...))
	if err != nil {
		return nil, ErrWrongPassword
	}
	return newAEAD(h.Cipher, key)
}

// chunkNonce is unique per (stream, chunk) within an image, and every image
// has its own random data key, so a nonce never repeats under one key.
func chunkNonce(a cipher.AEAD, stream uint32, chunk uint64) []byte {
	n := make([]byte, a.NonceSize())
	binary.LittleEndian.PutUint32(n, stream)
	binary.LittleEndian.PutUint64(n[4:], chunk)
	return n
}

// chunkAD binds a record to its image, its origin chunk and its plaintext
// hash: a record moved, swapped or taken from another image fails to open.
func chunkAD(uuid [16]byte, stream uint32, chunk uint64, sum *[32]byte) []byte {
	ad := make([]byte, 0, 16+4+8+32)
	ad = append(ad, uuid[:]...)
	ad = binary.LittleEndian.AppendUint32(ad, stream)
	ad = binary.LittleEndian.AppendUint64(ad, chunk)
	return append(ad, sum[:]...)
}
