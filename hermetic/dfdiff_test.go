package hermetic

import (
	"context"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// noRegistry resolves every image to a one-layer linux/amd64 config without
// asking a registry.
type noRegistry struct{}

func (noRegistry) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return ref, "", []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("0", 64) + `"]},"config":{}}`), nil
}

// llbSources converts a Dockerfile to LLB with BuildKit's own frontend,
// as the build would, and returns the identifiers of its sources.
func llbSources(ctx context.Context, dockerfile []byte, buildArgs map[string]string, target string) ([]string, error) {
	platform := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	res, err := dockerfile2llb.Dockerfile2LLB(ctx, dockerfile, dockerfile2llb.ConvertOpt{
		Config:         dockerui.Config{BuildArgs: buildArgs, Target: target, TargetPlatforms: []ocispecs.Platform{platform}},
		TargetPlatform: &platform,
		MetaResolver:   noRegistry{},
	})
	if err != nil {
		return nil, err
	}
	def, err := res.State.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, err
		}
		if src := op.GetSource(); src != nil {
			out = append(out, src.Identifier)
		}
	}
	return out, nil
}

// normalizedImage is an image name as BuildKit's docker-image sources
// spell it.
func normalizedImage(name string) string {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.TagNameOnly(n).String()
}

// FuzzDockerfileInputs: the lock pins what AnalyzeDockerfile finds, and a
// build fetches what BuildKit's Dockerfile frontend converts the same
// Dockerfile to. Every image, URL and git repository BuildKit's own
// conversion fetches is among those the analysis reports.
func FuzzDockerfileInputs(f *testing.F) {
	for _, df := range []string{
		"FROM example.test/base:1\nRUN true\n",
		"ARG R=example.test\nFROM ${R}/base:1 AS b\nFROM b\nCOPY --from=example.test/tools:2 /t /t\n",
		"FROM example.test/base:1\nRUN --mount=type=bind,from=example.test/src:3,target=/s true\n",
		"FROM example.test/base:1\nADD https://example.test/f.tar.gz /f\nADD https://example.test/r.git#v1 /r\n",
		"ARG V=1\nFROM example.test/base:$V AS a\nARG V\nFROM a\nONBUILD RUN true\n",
		"FROM --platform=$BUILDPLATFORM example.test/base:1 AS x\nFROM scratch\nCOPY --from=x / /\n",
		"# escape=`\nFROM example.test/base:1\nCOPY --from=example.test/`\nt:1 /a /b\n",
	} {
		f.Add([]byte(df), "", "")
	}
	f.Fuzz(func(t *testing.T, dockerfile []byte, arg, target string) {
		if len(dockerfile) > 4096 {
			return
		}
		args := map[string]string{"V": arg}
		a, err := AnalyzeDockerfile(dockerfile, args, target, "linux/amd64")
		if err != nil {
			return // the lock refuses it: nothing is built
		}
		sources, err := llbSources(context.Background(), dockerfile, args, target)
		if err != nil {
			return // BuildKit refuses it: nothing is built
		}
		images, urls, gits := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, im := range a.Images {
			images[normalizedImage(im.Name)] = true
		}
		for _, u := range a.URLs {
			urls[u.URL] = true
		}
		for _, g := range a.Git {
			gits[g.Remote] = true
		}
		for _, id := range sources {
			scheme, rest, _ := strings.Cut(id, "://")
			switch scheme {
			case "docker-image":
				if !images[rest] {
					t.Fatalf("BuildKit fetches image %s, which the analysis does not report (it reports %v)\n%s", rest, a.Images, dockerfile)
				}
			case "https", "http":
				if !urls[id] {
					t.Fatalf("BuildKit fetches %s, which the analysis does not report (it reports %v)\n%s", id, a.URLs, dockerfile)
				}
			case "git":
				found := false
				for g := range gits {
					found = found || strings.Contains(g, strings.SplitN(rest, "#", 2)[0])
				}
				if !found {
					t.Fatalf("BuildKit fetches git %s, which the analysis does not report (it reports %v)\n%s", id, a.Git, dockerfile)
				}
			case "local":
			default:
				t.Fatalf("BuildKit fetches %s, a kind of source the analysis does not know\n%s", id, dockerfile)
			}
		}
	})
}
