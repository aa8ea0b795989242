package imagediff

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestLoadRemote(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	img := buildImage(t, imgSpec{layers: [][]byte{tarBytes(t, tfile{name: "a", body: "a"})}})
	ref, err := name.ParseReference(u.Host + "/test/image:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}

	got, err := Load(context.Background(), ref.String())
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, img) {
		t.Errorf("digest mismatch")
	}
	r, err := Compare(context.Background(), got, viaLayout(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Equal() {
		t.Errorf("registry and layout copies differ:\n%s", dump(r))
	}

	if _, err := Load(context.Background(), u.Host+"/test/missing:v1"); err == nil {
		t.Errorf("Load of a missing tag succeeded")
	}
}
