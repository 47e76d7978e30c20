package remote

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrVerify is returned when an object read back from the bucket does not
// have the size or checksum of what was sent.
var ErrVerify = errors.New("uploaded object does not match")

// upload copies the segment in dir (ID id) into b: every data file, each
// verified by its size and MD5 (sent with the PUT, checked by the server,
// and compared again with what the bucket then reports), and meta.json
// last, so that a reader never sees a segment whose data is not all there.
// An object already in the bucket with the size and MD5 of the local file
// is not sent again, so that a retry after a crash sends only what is
// missing. It returns the bytes sent.
//
// names, when not nil, is uploaded as names.json (the segment's metric
// names, for readers: see metricNames) after the data files and before
// meta.json.
func upload(ctx context.Context, b Bucket, dir, id string, names []string) (int64, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel != metaName {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("upload segment %s: %w", id, err)
	}
	slices.Sort(files)
	// The marker first: if it is there and matches, so is the rest.
	if ok, err := matches(ctx, b, metaKey(id), filepath.Join(dir, metaName)); err != nil || ok {
		return 0, err
	}
	var sent int64
	for _, rel := range append(files, metaName) {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		if rel == metaName && names != nil {
			data, err := json.Marshal(names)
			if err != nil {
				return sent, err
			}
			n, err := putBytesVerified(ctx, b, objectKey(id, namesName), data)
			sent += n
			if err != nil {
				return sent, fmt.Errorf("upload segment %s: %w", id, err)
			}
		}
		n, err := putVerified(ctx, b, objectKey(id, rel), filepath.Join(dir, filepath.FromSlash(rel)))
		sent += n
		if err != nil {
			return sent, fmt.Errorf("upload segment %s: %w", id, err)
		}
	}
	return sent, nil
}

// fileSum returns the size and MD5 of the file at path.
func fileSum(path string) (int64, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	h := md5.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, nil, err
	}
	return n, h.Sum(nil), nil
}

// matches reports whether key holds the content of the file at path
// (same size and MD5).
func matches(ctx context.Context, b Bucket, key, path string) (bool, error) {
	size, sum, err := fileSum(path)
	if err != nil {
		return false, err
	}
	oi, err := b.Stat(ctx, key)
	if errors.Is(err, ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return oi.Size == size && etagMatches(oi.ETag, sum), nil
}

// putVerified uploads the file at path as key unless it is there already,
// and checks what the bucket holds afterwards. It returns the bytes sent.
func putVerified(ctx context.Context, b Bucket, key, path string) (int64, error) {
	size, sum, err := fileSum(path)
	if err != nil {
		return 0, err
	}
	if oi, err := b.Stat(ctx, key); err == nil && oi.Size == size && etagMatches(oi.ETag, sum) {
		return 0, nil
	} else if err != nil && !errors.Is(err, ErrNotExist) {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := b.Put(ctx, key, f, size, sum); err != nil {
		return 0, err
	}
	oi, err := b.Stat(ctx, key)
	if err != nil {
		return size, fmt.Errorf("verify %s: %w", key, err)
	}
	if oi.Size != size || !etagMatches(oi.ETag, sum) {
		return size, fmt.Errorf("verify %s: %w: the bucket holds %d bytes (ETag %s), sent %d (MD5 %x)", key, ErrVerify, oi.Size, oi.ETag, size, sum)
	}
	return size, nil
}

// putBytesVerified is putVerified for content held in memory.
func putBytesVerified(ctx context.Context, b Bucket, key string, data []byte) (int64, error) {
	h := md5.Sum(data)
	sum, size := h[:], int64(len(data))
	if oi, err := b.Stat(ctx, key); err == nil && oi.Size == size && etagMatches(oi.ETag, sum) {
		return 0, nil
	} else if err != nil && !errors.Is(err, ErrNotExist) {
		return 0, err
	}
	if err := b.Put(ctx, key, bytes.NewReader(data), size, sum); err != nil {
		return 0, err
	}
	oi, err := b.Stat(ctx, key)
	if err != nil {
		return size, fmt.Errorf("verify %s: %w", key, err)
	}
	if oi.Size != size || !etagMatches(oi.ETag, sum) {
		return size, fmt.Errorf("verify %s: %w: the bucket holds %d bytes (ETag %s), sent %d (MD5 %x)", key, ErrVerify, oi.Size, oi.ETag, size, sum)
	}
	return size, nil
}

// etagMatches reports whether an ETag is consistent with content of MD5
// sum: equal when it is an MD5 (32 hex digits, what a plain PUT gets);
// an ETag of another form (encrypted objects) cannot be compared, and the
// server has checked the Content-MD5 sent with the PUT.
func etagMatches(etag string, sum []byte) bool {
	etag = strings.ToLower(strings.Trim(etag, `"`))
	if len(etag) != 32 {
		return true
	}
	if _, err := hex.DecodeString(etag); err != nil {
		return true
	}
	return etag == hex.EncodeToString(sum)
}
