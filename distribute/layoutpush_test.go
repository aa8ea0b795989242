package distribute_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/distribute"
)

func TestParseAttachments(t *testing.T) {
	got, err := distribute.ParseAttachments([]string{"a=b.json=application/x", "c=t"})
	if err != nil {
		t.Fatal(err)
	}
	want := []distribute.AttachmentFile{{Path: "a=b.json", ArtifactType: "application/x"}, {Path: "c", ArtifactType: "t"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"file", "=type", "file="} {
		if _, err := distribute.ParseAttachments([]string{bad}); err == nil || !strings.Contains(err.Error(), "FILE=ARTIFACT_TYPE") {
			t.Errorf("%q: %v, want a FILE=ARTIFACT_TYPE error", bad, err)
		}
	}
}

// PushLayout refuses a layout or an attachment it cannot read before it
// reaches a registry.
func TestPushLayoutRefusesWhatItCannotRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := name.MustParseReference("registry.invalid/team/app:1")
	for _, tt := range []struct {
		layout string
		files  []distribute.AttachmentFile
		want   string
	}{
		{file, nil, "not a directory"},
		{dir, []distribute.AttachmentFile{{Path: filepath.Join(dir, "missing"), ArtifactType: "t"}}, "not a readable file"},
		{dir, []distribute.AttachmentFile{{Path: dir, ArtifactType: "t"}}, "not a readable file"},
	} {
		_, err := distribute.PushLayout(context.Background(), tt.layout, ref, tt.files)
		var invalid *distribute.InvalidPushError
		if !errors.As(err, &invalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("PushLayout(%s, %v): %v, want an InvalidPushError saying %q", tt.layout, tt.files, err, tt.want)
		}
	}
}
