package workercert

import (
	"bytes"
	"testing"
)

func TestFilesText(t *testing.T) {
	f := &Files{CA: "certs/ca.pem", NewCA: true,
		Certs:      map[string]string{"b": "certs/b.pem", "a": "certs/a.pem"},
		Keys:       map[string]string{"b": "certs/b-key.pem", "a": "certs/a-key.pem"},
		Identities: map[string]string{"b": "spiffe://twinforge/workers/p/b", "a": "spiffe://twinforge/clients/p/a"}}
	var b bytes.Buffer
	if err := f.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "new CA certs/ca.pem (keep " + CAKeyFile + " on this machine)\n" +
		"a  spiffe://twinforge/clients/p/a  certs/a.pem  certs/a-key.pem\n" +
		"b  spiffe://twinforge/workers/p/b  certs/b.pem  certs/b-key.pem\n"
	if b.String() != want {
		t.Errorf("WriteText =\n%s\nwant\n%s", b.String(), want)
	}
}
