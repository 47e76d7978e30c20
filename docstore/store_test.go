package docstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestPutGetListDelete(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := s.List(); err != nil || len(l) != 0 {
		t.Fatalf("empty store lists %v, %v", l, err)
	}
	if err := s.Put("ops", []byte(`{"title":"Ops","panels":[]}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("a-1", []byte(`{"title":7}`)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("ops")
	if err != nil || string(got) != `{"title":"Ops","panels":[]}` {
		t.Fatalf("Get: %q, %v", got, err)
	}
	l, err := s.List()
	if err != nil || len(l) != 2 || l[0].ID != "a-1" || l[0].Title != "" || l[1].ID != "ops" || l[1].Title != "Ops" || l[1].Updated.IsZero() {
		t.Fatalf("List: %+v, %v", l, err)
	}
	// A reopened store holds the same, and drops a crashed write's leftovers.
	if err := os.WriteFile(filepath.Join(dir, "ops.json.123.tmp"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Errorf("Open left %v", m)
	}
	if err := s.Delete("ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("ops"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := s.Delete("ops"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
}

func TestRefusesBadIDsAndDocuments(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "../x", "A", "a/b", "-a", "a.json", string(make([]byte, 65))} {
		if err := s.Put(id, []byte(`{}`)); !errors.Is(err, ErrBadID) {
			t.Errorf("Put(%q): %v, want ErrBadID", id, err)
		}
		if _, err := s.Get(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Get(%q): %v, want ErrBadID", id, err)
		}
	}
	for _, doc := range []string{"", "[]", `"x"`, "{", `{"a":1}x`, "{\"a\":\"" + string(make([]byte, MaxDocumentBytes)) + "\"}"} {
		if err := s.Put("d", []byte(doc)); !errors.Is(err, ErrBadDocument) {
			t.Errorf("Put(%.20q): %v, want ErrBadDocument", doc, err)
		}
	}
	if l, _ := s.List(); len(l) != 0 {
		t.Errorf("refused documents were stored: %v", l)
	}
}

// Writers of one id race with readers: every read sees one whole document.
func TestConcurrentPutsAndReads(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]bool{}
	for i := range 8 {
		docs[fmt.Sprintf(`{"title":"v%d","pad":"%0*d"}`, i, 2000*i, 0)] = true
	}
	if err := s.Put("d", []byte(`{"title":"v0","pad":""}`)); err != nil {
		t.Fatal(err)
	}
	docs[`{"title":"v0","pad":""}`] = true
	var wg sync.WaitGroup
	for doc := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := s.Put("d", []byte(doc)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b, err := s.Get("d")
				if err != nil || !docs[string(b)] {
					t.Errorf("read %.40q, %v: not one whole document", b, err)
					return
				}
				if _, err := s.List(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
