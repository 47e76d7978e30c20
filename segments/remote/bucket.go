package remote

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrNotExist is returned by Bucket.Stat and Bucket.Get for a key the
// bucket does not hold.
var ErrNotExist = errors.New("object does not exist")

// Bucket is the object storage the tier reads and writes: keys are
// relative to the bucket's prefix. Implementations are safe for concurrent
// use.
type Bucket interface {
	// Name names the bucket in messages (s3://bucket/prefix).
	Name() string
	// Put stores size bytes read from r under key, sending md5 (the
	// content's MD5, which the server checks) with it. An interrupted Put
	// leaves the key absent or whole, never partial.
	Put(ctx context.Context, key string, r io.Reader, size int64, md5 []byte) error
	// Stat returns the size and ETag of key, ErrNotExist if it is absent.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Get returns length bytes of key from off (length < 0: to the end).
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// List calls fn with every key under prefix, in lexical order.
	List(ctx context.Context, prefix string, fn func(key string) error) error
	// Delete removes key; an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// ObjectInfo is what Stat reports of an object.
type ObjectInfo struct {
	Size int64
	// ETag is the object's entity tag without quotes: the hex MD5 of the
	// content for an object stored by one plain PUT.
	ETag string
	// Modified is when the object was stored, by the server's clock.
	Modified time.Time
}

// S3 is a Bucket in an S3-compatible object store, through minio-go.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string // "" or ending in "/"
	name   string
}

var _ Bucket = (*S3)(nil)

// OpenS3 opens the bucket that rawURL names:
//
//	s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=REGION&insecure=true&path_style=true
//
// endpoint defaults to s3.amazonaws.com and may carry http:// or https://
// (http:// is the same as insecure=true). Credentials are read as the AWS
// SDKs read them, from getenv: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
// (and AWS_SESSION_TOKEN), else the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE), else the instance's IAM role.
func OpenS3(rawURL string) (*S3, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("object storage url: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("object storage url %q: want s3://bucket/prefix?endpoint=host:port&region=…", redact(u))
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "insecure", "path_style":
		default:
			return nil, fmt.Errorf("object storage url %q: unknown parameter %q (known: endpoint, region, insecure, path_style)", redact(u), k)
		}
	}
	endpoint := q.Get("endpoint")
	secure := true
	switch {
	case endpoint == "":
		endpoint = "s3.amazonaws.com"
	case strings.HasPrefix(endpoint, "http://"):
		endpoint, secure = strings.TrimPrefix(endpoint, "http://"), false
	case strings.HasPrefix(endpoint, "https://"):
		endpoint = strings.TrimPrefix(endpoint, "https://")
	}
	if v := q.Get("insecure"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("object storage url: insecure=%q: %w", v, err)
		}
		secure = secure && !b
	}
	lookup := minio.BucketLookupAuto
	if v := q.Get("path_style"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("object storage url: path_style=%q: %w", v, err)
		}
		if b {
			lookup = minio.BucketLookupPath
		}
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{Filename: os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), Profile: os.Getenv("AWS_PROFILE")},
		&credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}},
	})
	client, err := minio.New(endpoint, &minio.Options{
		Creds: creds, Secure: secure, Region: q.Get("region"), BucketLookup: lookup,
		// Retries are the tier's own (with backoff, counted): one attempt
		// here keeps a down bucket from holding a query for long.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("object storage client: %w", err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	name := "s3://" + u.Host + "/" + prefix
	return &S3{client: client, bucket: u.Host, prefix: prefix, name: strings.TrimSuffix(name, "/")}, nil
}

// redact drops the query (which holds no secrets today, but might).
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	c.User = nil
	return c.String()
}

func (b *S3) Name() string { return b.name }

func (b *S3) key(k string) string { return b.prefix + k }

func (b *S3) Put(ctx context.Context, key string, r io.Reader, size int64, sum []byte) error {
	core := minio.Core{Client: b.client}
	_, err := core.PutObject(ctx, b.bucket, b.key(key), r, size, base64.StdEncoding.EncodeToString(sum), "",
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (b *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	oi, err := b.client.StatObject(ctx, b.bucket, b.key(key), minio.StatObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, ErrNotExist)
		}
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return ObjectInfo{Size: oi.Size, ETag: strings.Trim(oi.ETag, `"`), Modified: oi.LastModified}, nil
}

func (b *S3) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	var opts minio.GetObjectOptions
	if off > 0 || length >= 0 {
		end := int64(0) // SetRange(off, 0): from off to the end
		if length >= 0 {
			if length == 0 {
				return io.NopCloser(strings.NewReader("")), nil
			}
			end = off + length - 1
		}
		if err := opts.SetRange(off, end); err != nil {
			return nil, err
		}
	}
	core := minio.Core{Client: b.client}
	rc, _, _, err := core.GetObject(ctx, b.bucket, b.key(key), opts)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("get %s: %w", key, ErrNotExist)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return rc, nil
}

func (b *S3) List(ctx context.Context, prefix string, fn func(string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range b.client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.key(prefix), Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("list %s: %w", prefix, oi.Err)
		}
		if err := fn(strings.TrimPrefix(oi.Key, b.prefix)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (b *S3) Delete(ctx context.Context, key string) error {
	if err := b.client.RemoveObject(ctx, b.bucket, b.key(key), minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey"
}
