package pipeline

import (
	"strings"
	"testing"

	"github.com/twinforge/twinforge/attest/github"
	"github.com/twinforge/twinforge/hermetic"
)

func TestCheckGitHubSource(t *testing.T) {
	gh := &github.Context{ServerURL: "https://github.com", Repository: "org/app", SHA: "aaaa"}
	ok := hermetic.Source{Kind: "git", Commit: "aaaa", Repository: "https://github.com/org/app.git"}
	tests := []struct {
		name string
		edit func(*hermetic.Source)
		want string
	}{
		{"the run's commit", func(*hermetic.Source) {}, ""},
		{"ssh origin", func(s *hermetic.Source) { s.Repository = "git@github.com:org/app.git" }, ""},
		{"no origin", func(s *hermetic.Source) { s.Repository = "" }, ""},
		{"another commit", func(s *hermetic.Source) { s.Commit = "bbbb" }, "GITHUB_SHA"},
		{"another repository", func(s *hermetic.Source) { s.Repository = "https://github.com/evil/app" }, "not the run's repository"},
		{"dirty", func(s *hermetic.Source) { s.Dirty = true }, "uncommitted"},
		{"not git", func(s *hermetic.Source) { s.Kind = "tree" }, "inside the checked-out repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := ok
			tt.edit(&src)
			err := CheckGitHubSource(src, gh)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
