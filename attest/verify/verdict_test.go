package verify

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyRebuildVerdicts(t *testing.T) {
	head := "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: " + filepath.Join("..", "testdata", "keys", "cosign.pub") +
		"\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n"
	p, err := ParsePolicy([]byte(head + "requireReproduced:\n  count: 2\n  by:\n    - issuer: https://i.test\n      subject: a@rebuild.test\n" +
		"    - issuerRegExp: https://i\\.test\n      subjectRegExp: .*@auditors\\.test\n    - publicKey: " + filepath.Join("..", "testdata", "keys", "release.pub") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.RequiredRebuildVerdicts() != 2 || len(p.RebuilderIdentities()) != 3 || !strings.Contains(p.RebuilderIdentities()[0], "a@rebuild.test") {
		t.Errorf("requireReproduced = %d %v", p.RequiredRebuildVerdicts(), p.RebuilderIdentities())
	}
	// Certificate rebuilders need a trusted root even when the signers are keys.
	if !p.NeedsTrustedRoot() {
		t.Error("a policy trusting certificate rebuilders needs no trusted root")
	}
	p, err = ParsePolicy([]byte(head))
	if err != nil {
		t.Fatal(err)
	}
	if p.RequiredRebuildVerdicts() != 0 || p.RebuilderIdentities() != nil || p.NeedsTrustedRoot() {
		t.Errorf("without requireReproduced: %d %v %v", p.RequiredRebuildVerdicts(), p.RebuilderIdentities(), p.NeedsTrustedRoot())
	}

	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"zero count", "requireReproduced:\n  count: 0\n  by:\n    - issuer: a\n      subject: b\n", []string{"at least 1"}},
		{"count not a number", "requireReproduced:\n  count: two\n  by:\n    - issuer: a\n      subject: b\n", []string{"line 8", "whole number"}},
		{"no rebuilders", "requireReproduced:\n  count: 1\n", []string{"no rebuilders"}},
		{"by not a list", "requireReproduced:\n  count: 1\n  by: a@b\n", []string{"line 9", "list"}},
		{"bad identity", "requireReproduced:\n  count: 1\n  by:\n    - issuer: a\n", []string{"line 10", "no subject"}},
		{"unknown identity field", "requireReproduced:\n  count: 1\n  by:\n    - issuer: a\n      subjekt: b\n", []string{"line 11", "subjekt"}},
		{"unknown field", "requireReproduced:\n  count: 1\n  rebuilders: [{issuer: a, subject: b}]\n", []string{"line 9", "rebuilders"}},
		{"a list", "requireReproduced: [a]\n", []string{"line 7", "mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(head + tt.doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.doc)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("not ErrInvalidPolicy: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
