package images

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

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

const (
	keyLen          = 32
	maxKDFMemKiB    = 1 << 20 // 1 GiB: refuse absurd costs from an untrusted header
	maxKDFTime      = 16
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

func deriveKEK(p *kdfParams, password []byte) []byte {
	return argon2.IDKey(password, p.Salt, p.Time, p.MemKiB, p.Threads, keyLen)
}

// newKey makes a random data key and wraps it under the password.
func newKey(c Cipher, password []byte, cost KDFCost, uuid [16]byte) (aead cipher.AEAD, p *kdfParams, wrapped []byte, err error) {
	cost = cost.orDefault()
	p = &kdfParams{Name: "argon2id", Salt: make([]byte, 16), Time: cost.Time, MemKiB: cost.MemKiB, Threads: 4}
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
	return p.Name == "argon2id" && len(p.Salt) >= 8 && p.Time != 0 && p.Time <= maxKDFTime &&
		p.MemKiB >= 8 && p.MemKiB <= maxKDFMemKiB && p.Threads != 0
}

// unwrapKey returns the data key's AEAD, or ErrWrongPassword.
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
