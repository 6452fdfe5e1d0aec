package engine

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Images in S3-compatible object storage (AWS S3, MinIO, Ceph RGW,
// SeaweedFS, versitygw, Backblaze B2), named s3://BUCKET/KEY. The
// endpoint, region and keys come from the usual AWS environment variables
// and files (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_PROFILE with ~/.aws/credentials, AWS_REGION, AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL) or from LIFEBOAT_S3_ENDPOINT (the CLI's --s3-endpoint).
//
// Writing is one multipart upload: the object appears under its name only
// when the upload completes, so an image there is complete or absent. Each
// part carries its CRC-32C (x-amz-checksum-crc32c, the checksum minio-go
// and the AWS SDKs send by default), which the server checks and echoes;
// the echo is compared too, and a server that echoes none has its part
// ETag (an MD5) compared instead. A backup killed before the
// end leaves an unfinished upload (invisible, but stored): the next backup
// to the same name aborts it, and a bucket lifecycle rule
// (AbortIncompleteMultipartUpload) removes others.

// IsS3 reports whether an image is named by an s3:// URL.
func IsS3(s string) bool { return strings.HasPrefix(s, "s3://") }

// S3EndpointEnv names the S3 endpoint when the AWS variables do not.
const S3EndpointEnv = "LIFEBOAT_S3_ENDPOINT"

type s3Loc struct{ bucket, key string }

func parseS3(s string) (s3Loc, error) {
	rest := strings.TrimPrefix(s, "s3://")
	b, k, _ := strings.Cut(rest, "/")
	if b == "" {
		return s3Loc{}, fmt.Errorf("%s: write s3://BUCKET/KEY", s)
	}
	return s3Loc{bucket: b, key: k}, nil
}

var (
	s3mu      sync.Mutex
	s3clients = map[string]*minio.Core{}
)

// s3Endpoint is the endpoint to use: host[:port] and whether it is TLS.
func s3Endpoint() (string, bool, error) {
	e := os.Getenv(S3EndpointEnv)
	for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if e == "" {
			e = os.Getenv(v)
		}
	}
	if e == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, fmt.Errorf("S3 endpoint %q: give http(s)://HOST[:PORT]", e)
	}
	return u.Host, u.Scheme == "https", nil
}

func s3Client() (*minio.Core, error) {
	host, secure, err := s3Endpoint()
	if err != nil {
		return nil, err
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	key := fmt.Sprintf("%s %t %s", host, secure, region)
	s3mu.Lock()
	defer s3mu.Unlock()
	if c, ok := s3clients[key]; ok {
		return c, nil
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.EnvMinio{}})
	c, err := minio.NewCore(host, &minio.Options{Creds: creds, Secure: secure, Region: region})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", host, err)
	}
	s3clients[key] = c
	return c, nil
}

// s3Error words an S3 failure for the object it is about, with what to do.
func s3Error(name string, err error) error {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return fmt.Errorf("%s: %w (check the endpoint: --s3-endpoint or AWS_ENDPOINT_URL)", name, err)
	}
	if er.StatusCode == 403 || er.Code == "XAdminUserNotFound" {
		er.Code = "AccessDenied"
	}
	switch er.Code {
	case "NoSuchBucket":
		return &NotFoundError{Path: name, Msg: fmt.Sprintf("%s: the bucket does not exist; create it or check the name", name)}
	case "NoSuchKey", "NotFound":
		return &NotFoundError{Path: name, Msg: fmt.Sprintf("%s: no such object", name)}
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return fmt.Errorf("%s: %s: %w; check the keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE)", name, er.Message, fs.ErrPermission)
	case "QuotaExceeded", "EntityTooLarge":
		return fmt.Errorf("%s: %s: the storage is full or over its quota", name, er.Message)
	}
	return fmt.Errorf("%s: %s (%s)", name, er.Message, er.Code)
}

// s3Object reads an object with ranged GETs (through windowReader);
// each GET is retried (with a pause) before a read fails.
type s3Object struct {
	ctx  context.Context
	c    *minio.Core
	loc  s3Loc
	name string
}

// s3Store is the buckets of an S3-compatible server.
type s3Store struct{}

func (s3Store) open(ctx context.Context, name string) (io.ReaderAt, int64, io.Closer, error) {
	loc, err := parseS3(name)
	if err != nil {
		return nil, 0, nil, err
	}
	c, err := s3Client()
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := c.StatObject(ctx, loc.bucket, loc.key, minio.StatObjectOptions{})
	if err != nil {
		return nil, 0, nil, s3Error(name, err)
	}
	o := &s3Object{ctx: ctx, c: c, loc: loc, name: name}
	return newWindowReader(o.get, st.Size), st.Size, io.NopCloser(nil), nil
}

func (o *s3Object) get(buf []byte, off int64) ([]byte, error) {
	n := int64(len(buf))
	var last error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-o.ctx.Done():
				return nil, o.ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 200 * time.Millisecond):
			}
		}
		var opts minio.GetObjectOptions
		opts.SetRange(off, off+n-1)
		rc, _, _, err := o.c.GetObject(o.ctx, o.loc.bucket, o.loc.key, opts)
		if err != nil {
			last = s3Error(o.name, err)
			if o.ctx.Err() != nil {
				return nil, o.ctx.Err()
			}
			continue
		}
		_, err = io.ReadFull(rc, buf)
		rc.Close()
		if err == nil {
			return buf, nil
		}
		last = fmt.Errorf("read %s at %d: %w", o.name, off, err)
	}
	return nil, last
}

// s3Upload is an image being written to S3: a multipart upload fed as an
// io.Writer, parts uploaded two at a time. Parts start at 8 MiB and grow
// (16 MiB after 1,000 parts, 32 MiB after 2,000, …), so memory stays at a
// few parts at any image size and 10,000 parts still reach tens of TiB.
type s3Upload struct {
	ctx    context.Context
	c      *minio.Core
	loc    s3Loc
	name   string
	id     string
	buf    []byte
	n      int // parts started
	mu     sync.Mutex
	parts  []minio.CompletePart
	err    error
	wg     sync.WaitGroup
	sem    chan struct{}
	pool   sync.Pool
	done   bool
	closed bool
}

const s3Parallel = 2

func s3PartSize(n int) int { return 8 << 20 << min(n/1000, 8) }

// create starts an upload to name after checking what can be checked
// before anything is written: the bucket, the keys, an existing object
// (kept unless overwrite). It aborts unfinished uploads to the same name
// that an interrupted backup left.
func (s3Store) create(ctx context.Context, name string, cc createCheck) (imageOutput, []string, error) {
	if err := remoteCreate(name, cc); err != nil {
		return nil, nil, err
	}
	loc, err := parseS3(name)
	if err != nil {
		return nil, nil, err
	}
	if loc.key == "" || strings.HasSuffix(loc.key, "/") {
		return nil, nil, refuse(name, "it names no object", "add the image's name: s3://%s/%spc1.lbi", loc.bucket, loc.key)
	}
	c, err := s3Client()
	if err != nil {
		return nil, nil, err
	}
	// A listing (not HEAD, whose answers have no body to tell a wrong
	// key from a missing bucket) checks the keys and the bucket.
	if _, err := c.ListObjectsV2(loc.bucket, loc.key, "", "", "/", 1); err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && er.Code == "NoSuchBucket" {
			return nil, nil, &NotFoundError{Path: name, Msg: fmt.Sprintf("%s: bucket %s does not exist; create it or check the name", name, loc.bucket)}
		}
		return nil, nil, s3Error(name, err)
	}
	if _, err := c.StatObject(ctx, loc.bucket, loc.key, minio.StatObjectOptions{}); err == nil && !cc.overwrite {
		return nil, nil, refuse(name, "an object of that name exists", "choose another name, or add --overwrite to replace it")
	}
	var notes []string
	if res, err := c.ListMultipartUploads(ctx, loc.bucket, loc.key, "", "", "", 1000); err == nil {
		for _, u := range res.Uploads {
			if u.Key == loc.key {
				if c.AbortMultipartUpload(ctx, loc.bucket, loc.key, u.UploadID) == nil {
					notes = append(notes, fmt.Sprintf("removed an unfinished upload of %s that an interrupted backup left (started %s)", name, u.Initiated.Format(time.RFC3339)))
				}
			}
		}
	}
	id, err := c.NewMultipartUpload(ctx, loc.bucket, loc.key, minio.PutObjectOptions{ContentType: "application/octet-stream",
		UserMetadata: map[string]string{"X-Amz-Checksum-Algorithm": "CRC32C"}})
	if err != nil {
		return nil, nil, s3Error(name, err)
	}
	u := &s3Upload{ctx: ctx, c: c, loc: loc, name: name, id: id, sem: make(chan struct{}, s3Parallel)}
	return remoteOutput{name, u}, notes, nil
}

func (u *s3Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *s3Upload) Write(p []byte) (int, error) {
	if err := u.failed(); err != nil {
		return 0, err
	}
	total := len(p)
	for len(p) > 0 {
		size := s3PartSize(u.n)
		if u.buf == nil {
			if b, ok := u.pool.Get().(*[]byte); ok && cap(*b) >= size {
				u.buf = (*b)[:0]
			} else {
				u.buf = make([]byte, 0, size)
			}
		}
		k := min(len(p), size-len(u.buf))
		u.buf = append(u.buf, p[:k]...)
		p = p[k:]
		if len(u.buf) == size {
			if err := u.flush(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// flush uploads the buffered part in the background (at most s3Parallel
// at once).
func (u *s3Upload) flush() error {
	if len(u.buf) == 0 && u.n > 0 {
		return nil
	}
	u.n++
	num, data := u.n, u.buf
	u.buf = nil
	select {
	case u.sem <- struct{}{}:
	case <-u.ctx.Done():
		return u.ctx.Err()
	}
	if err := u.failed(); err != nil {
		<-u.sem
		return err
	}
	u.wg.Go(func() {
		defer func() { <-u.sem }()
		// The CRC-32C lets the server check every part, at a fraction of
		// Content-MD5's cost on both sides (MD5 was 12 % of the backup's
		// CPU, and half versitygw's, which hashed each part twice); the
		// payload is not hashed a second time for the signature.
		sum := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, castagnoli)))
		h := http.Header{}
		h.Set("X-Amz-Checksum-Crc32c", sum)
		h.Set("X-Amz-Checksum-Algorithm", "CRC32C")
		p, err := u.c.PutObjectPart(u.ctx, u.loc.bucket, u.loc.key, u.id, num, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectPartOptions{CustomHeader: h, DisableContentSha256: true})
		if err == nil {
			err = partReceived(p, sum, data)
		}
		u.pool.Put(&data)
		u.mu.Lock()
		defer u.mu.Unlock()
		if err != nil {
			if u.err == nil {
				u.err = s3Error(u.name, err)
			}
			return
		}
		u.parts = append(u.parts, minio.CompletePart{PartNumber: num, ETag: p.ETag, ChecksumCRC32C: p.ChecksumCRC32C})
	})
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// partReceived checks that the server stored the part that was sent: by
// the CRC-32C it echoes, or, from a server that echoes no checksum (and so
// may not have checked it), by its ETag, which S3 makes the part's MD5.
func partReceived(p minio.ObjectPart, crc string, data []byte) error {
	if p.ChecksumCRC32C != "" {
		if p.ChecksumCRC32C != crc {
			return fmt.Errorf("part %d: the server stored CRC-32C %s, not the %s sent", p.PartNumber, p.ChecksumCRC32C, crc)
		}
		return nil
	}
	etag := strings.Trim(p.ETag, `"`)
	if len(etag) != 2*md5.Size {
		return nil // not an MD5 (server-side encryption): only the transport's checks remain
	}
	if sum := md5.Sum(data); hex.EncodeToString(sum[:]) != strings.ToLower(etag) {
		return fmt.Errorf("part %d: the server stored MD5 %s, not the %x sent", p.PartNumber, etag, sum)
	}
	return nil
}

// Commit uploads what is left and completes the upload: the object
// appears, whole.
func (u *s3Upload) Commit() error {
	if err := u.flush(); err != nil {
		u.Abort()
		return err
	}
	u.wg.Wait()
	if err := u.failed(); err != nil {
		u.Abort()
		return err
	}
	slices.SortFunc(u.parts, func(a, b minio.CompletePart) int { return a.PartNumber - b.PartNumber })
	if _, err := u.c.CompleteMultipartUpload(u.ctx, u.loc.bucket, u.loc.key, u.id, u.parts, minio.PutObjectOptions{}); err != nil {
		u.Abort()
		return s3Error(u.name, err)
	}
	u.done = true
	return nil
}

// Abort ends an upload that did not complete: nothing stays stored.
func (u *s3Upload) Abort() {
	if u.done || u.closed {
		return
	}
	u.closed = true
	u.wg.Wait()
	// Even when the backup was cancelled, the parts must go.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), time.Minute)
	defer cancel()
	u.c.AbortMultipartUpload(ctx, u.loc.bucket, u.loc.key, u.id)
}

// remove deletes an object.
func (s3Store) remove(ctx context.Context, name string) error {
	loc, err := parseS3(name)
	if err != nil {
		return err
	}
	c, err := s3Client()
	if err != nil {
		return err
	}
	return c.RemoveObject(context.WithoutCancel(ctx), loc.bucket, loc.key, minio.RemoveObjectOptions{})
}

// list lists the images (first parts) directly under a prefix, by name.
func (s3Store) list(ctx context.Context, prefix string) []string {
	loc, err := parseS3(prefix)
	if err != nil {
		return nil
	}
	c, err := s3Client()
	if err != nil {
		return nil
	}
	if loc.key != "" && !strings.HasSuffix(loc.key, "/") {
		loc.key += "/"
	}
	var out []string
	for o := range c.Client.ListObjects(ctx, loc.bucket, minio.ListObjectsOptions{Prefix: loc.key}) {
		if o.Err != nil {
			return out
		}
		if IsImageName(path.Base(o.Key)) {
			out = append(out, "s3://"+loc.bucket+"/"+o.Key)
		}
	}
	slices.Sort(out)
	return out
}

func (s3Store) exists(ctx context.Context, name string) bool {
	loc, err := parseS3(name)
	if err != nil {
		return false
	}
	c, err := s3Client()
	if err != nil {
		return false
	}
	_, err = c.StatObject(ctx, loc.bucket, loc.key, minio.StatObjectOptions{})
	return err == nil
}

// checkFolder checks the bucket and the keys with a listing of the prefix.
func (s3Store) checkFolder(ctx context.Context, dir string) error {
	loc, err := parseS3(dir)
	if err != nil {
		return err
	}
	c, err := s3Client()
	if err != nil {
		return err
	}
	if _, err := c.ListObjectsV2(loc.bucket, loc.key, "", "", "/", 1); err != nil {
		return s3Error(dir, err)
	}
	return nil
}
