package images

import (
	"errors"
	"fmt"
)

var (
	// ErrWrongPassword: the password does not open this image. Ask again or
	// use the password the backup was made with.
	ErrWrongPassword = errors.New("wrong password")
	// ErrPasswordNeeded: the image is encrypted and no password source was
	// given. Pass OpenOptions.Password.
	ErrPasswordNeeded = errors.New("the image is encrypted and needs a password")
	// ErrCorrupt: some bytes of the image are not what was written. The image
	// cannot be trusted; use another copy. Errors wrapping it are *CorruptError.
	ErrCorrupt = errors.New("image is damaged")
	// ErrIncomplete: the image lacks its end (an interrupted backup or a
	// truncated copy) or a split part. Find the missing part or make a new backup.
	ErrIncomplete = errors.New("image is incomplete")
	// ErrNotImage: the file is not a Lifeboat image at all.
	ErrNotImage = errors.New("not a lifeboat image")

	errNotImage    = ErrNotImage
	errBadHeader   = fmt.Errorf("%w: its header is damaged (its checksum or one of its fields is wrong)", ErrCorrupt)
	errBadIndex    = fmt.Errorf("%w: its index is invalid", ErrCorrupt)
	errBadPart     = fmt.Errorf("%w: a split part's header is invalid", ErrCorrupt)
	errForeignPart = fmt.Errorf("%w: a split part belongs to a different image", ErrCorrupt)
)

// CorruptError says where an image is damaged.
type CorruptError struct {
	Image   string // the image as the user named it
	Part    string // the part file holding the bad bytes
	PartOff int64  // offset of the first bad byte (or of the damaged record) in Part
	Offset  int64  // the same as a logical offset in the joined image
	What    string
	Err     error // ErrCorrupt, ErrWrongPassword or ErrIncomplete
}

func (e *CorruptError) Error() string {
	if e.Err == ErrIncomplete {
		return fmt.Sprintf("image %s is incomplete: %s", e.Image, e.What)
	}
	where := fmt.Sprintf("at byte %d", e.Offset)
	if e.Part != "" && e.Part != e.Image {
		where += fmt.Sprintf(" (byte %d of part %s)", e.PartOff, e.Part)
	}
	return fmt.Sprintf("image %s is damaged %s: %s; it cannot be trusted, use another copy or make a new backup", e.Image, where, e.What)
}

func (e *CorruptError) Unwrap() error { return e.Err }
