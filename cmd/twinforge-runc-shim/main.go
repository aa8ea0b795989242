// Command twinforge-runc-shim stands between a rebuild daemon and runc, so
// the rebuild's RUN steps see a different umask and time zone than the
// build's: BuildKit itself always runs them with umask 0022 and no TZ.
// twinforge points buildkitd's --oci-worker-binary at it and configures it
// through the daemon's environment, which runc inherits:
//
//	TWINFORGE_SHIM_RUNC   the real runc (required)
//	TWINFORGE_SHIM_UMASK  octal umask for each container's first process
//	TWINFORGE_SHIM_TZ     TZ for each container's first process, unless set
//
// For "run" and "create" it edits the bundle's config.json, then executes
// runc with the same arguments; every other command passes straight through.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	runc := os.Getenv("TWINFORGE_SHIM_RUNC")
	if runc == "" {
		fmt.Fprintln(os.Stderr, "twinforge-runc-shim: TWINFORGE_SHIM_RUNC is not set")
		os.Exit(1)
	}
	args := os.Args[1:]
	if bundle, ok := bundleOf(args); ok {
		if err := vary(filepath.Join(bundle, "config.json"), os.Getenv("TWINFORGE_SHIM_UMASK"), os.Getenv("TWINFORGE_SHIM_TZ")); err != nil {
			fmt.Fprintln(os.Stderr, "twinforge-runc-shim:", err)
			os.Exit(1)
		}
	}
	err := syscall.Exec(runc, append([]string{runc}, args...), os.Environ())
	fmt.Fprintln(os.Stderr, "twinforge-runc-shim: executing runc:", err)
	os.Exit(1)
}

// bundleOf returns the bundle directory of a "run" or "create" command.
func bundleOf(args []string) (string, bool) {
	command := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case command == "" && !strings.HasPrefix(a, "-"):
			command = a
		case command == "" && (a == "--log" || a == "--log-format" || a == "--root" || a == "--criu"):
			i++ // a global flag's value
		case command == "run" || command == "create":
			if a == "--bundle" || a == "-b" {
				if i+1 < len(args) {
					return args[i+1], true
				}
			}
			if v, ok := strings.CutPrefix(a, "--bundle="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// vary sets the umask and time zone of a bundle's first process, keeping
// every other field of the spec as it is.
func vary(config, umask, tz string) error {
	if umask == "" && tz == "" {
		return nil
	}
	b, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("reading %s: %w", config, err)
	}
	proc, _ := spec["process"].(map[string]any)
	if proc == nil {
		return nil
	}
	if umask != "" {
		n, err := strconv.ParseUint(umask, 8, 32)
		if err != nil {
			return fmt.Errorf("TWINFORGE_SHIM_UMASK %q: %w", umask, err)
		}
		user, _ := proc["user"].(map[string]any)
		if user == nil {
			user = map[string]any{}
			proc["user"] = user
		}
		user["umask"] = n
	}
	if tz != "" {
		env, _ := proc["env"].([]any)
		set := false
		for _, e := range env {
			if s, ok := e.(string); ok && strings.HasPrefix(s, "TZ=") {
				set = true
			}
		}
		if !set {
			proc["env"] = append(env, "TZ="+tz)
		}
	}
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(config, out, 0o600)
}
