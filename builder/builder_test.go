package builder_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/internal/testenv"
)

func TestBuildExampleHello(t *testing.T) {
	d := testenv.StartDaemon(t)
	bases := testenv.BaseImages(t)
	out := filepath.Join(t.TempDir(), "hello")
	res, err := builder.New(d).Build(context.Background(), builder.Request{
		ContextDir: filepath.Join(testenv.RepoRoot(t), "examples", "hello"),
		BaseImages: bases,
		OCILayout:  out,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
}
