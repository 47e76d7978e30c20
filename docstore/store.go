// Package docstore keeps small JSON documents (the dashboard's saved
// dashboards) by id in one directory of the data dir, one file each. Every
// write is atomic: a reader or a crash sees the old document or the new
// one, never a mix. It knows nothing of what the documents mean beyond
// their "title" field, and it is not meant for many or large documents.
package docstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// MaxDocumentBytes is the largest document Put accepts.
const MaxDocumentBytes = 1 << 20

var (
	// ErrNotFound: no document has that id.
	ErrNotFound = errors.New("no such document")
	// ErrBadID: ids are 1 to 64 of a-z, 0-9, '-' and '_', starting with a
	// letter or digit.
	ErrBadID = errors.New("bad document id: use 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit")
	// ErrBadDocument: a document must be a JSON object of at most
	// MaxDocumentBytes.
	ErrBadDocument = errors.New("bad document")
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

const ext = ".json"

// Store is a directory of documents. It is safe for concurrent use; writes
// are serialised so that two writers of one id leave one whole document.
type Store struct {
	dir string
	mu  sync.Mutex // serialises Put and Delete
}

// Summary describes one document for a listing.
type Summary struct {
	ID      string    `json:"id"`
	Title   string    `json:"title"`
	Updated time.Time `json:"updated"`
}

// Open returns the store in dir, creating dir when missing, and removes
// temporary files a crash left behind.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open document store: %w", err)
	}
	tmps, err := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if err != nil {
		return nil, fmt.Errorf("open document store: %w", err)
	}
	for _, p := range tmps {
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("open document store: remove %s: %w", p, err)
		}
	}
	return &Store{dir: dir}, nil
}

// ValidID reports whether id may name a document.
func ValidID(id string) bool { return idPattern.MatchString(id) }

func (s *Store) path(id string) (string, error) {
	if !ValidID(id) {
		return "", ErrBadID
	}
	return filepath.Join(s.dir, id+ext), nil
}

// List returns every document's summary, by id.
func (s *Store) List() ([]Summary, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	out := []Summary{}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ext)
		if !ok || !ValidID(id) || e.IsDir() {
			continue
		}
		b, err := s.Get(id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		var doc struct {
			Title string `json:"title"`
		}
		_ = json.Unmarshal(b, &doc) // Put accepted only objects; a title of another type is shown as none
		out = append(out, Summary{ID: id, Title: doc.Title, Updated: info.ModTime().UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns the document id as it was put.
func (s *Store) Get(id string) ([]byte, error) {
	p, err := s.path(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read document %s: %w", id, err)
	}
	return b, nil
}

// Put stores doc, a JSON object, as id, replacing any document of that id.
// It returns once the document is durable.
func (s *Store) Put(id string, doc []byte) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	if len(doc) > MaxDocumentBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadDocument, len(doc), MaxDocumentBytes)
	}
	if t := bytes.TrimSpace(doc); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return fmt.Errorf("%w: not a JSON object", ErrBadDocument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return writeAtomic(p, doc)
}

// Delete removes the document id.
func (s *Store) Delete(id string) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("delete document %s: %w", id, err)
	}
	return syncDir(filepath.Dir(p))
}

// writeAtomic writes b to path through a temporary file: write, fsync,
// rename, fsync the directory.
func writeAtomic(path string, b []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write document: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("write document: %w", err)
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write document: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write document: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write document: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return d.Close()
}
