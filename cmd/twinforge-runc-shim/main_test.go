package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestBundleOf(t *testing.T) {
	tests := []struct {
		args   []string
		bundle string
		ok     bool
	}{
		{[]string{"--log", "/x/log.json", "--log-format", "json", "run", "--bundle", "/b", "id"}, "/b", true},
		{[]string{"create", "--bundle=/c", "id"}, "/c", true},
		{[]string{"run", "-b", "/d", "--detach", "id"}, "/d", true},
		{[]string{"exec", "--process", "/p.json", "id"}, "", false},
		{[]string{"kill", "id", "9"}, "", false},
		{[]string{"--root", "/run/runc", "delete", "--force", "id"}, "", false},
	}
	for _, tt := range tests {
		b, ok := bundleOf(tt.args)
		if b != tt.bundle || ok != tt.ok {
			t.Errorf("bundleOf(%v) = %q, %v; want %q, %v", tt.args, b, ok, tt.bundle, tt.ok)
		}
	}
}

func TestVary(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	spec := `{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"env":["PATH=/bin"],"args":["/bin/sh"]},"root":{"path":"rootfs"}}`
	if err := os.WriteFile(p, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := vary(p, "027", "Asia/Tokyo"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Process struct {
			User struct{ Umask *uint32 }
			Env  []string
			Args []string
		}
		Root struct{ Path string }
	}
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Process.User.Umask == nil || *got.Process.User.Umask != 0o27 {
		t.Errorf("umask = %v, want 027", got.Process.User.Umask)
	}
	if len(got.Process.Env) != 2 || got.Process.Env[1] != "TZ=Asia/Tokyo" || got.Root.Path != "rootfs" || got.Process.Args[0] != "/bin/sh" {
		t.Errorf("spec changed beyond umask and TZ: %s", b)
	}
	if err := vary(p, "9z", ""); err == nil {
		t.Error("a bad umask was accepted")
	}
}
