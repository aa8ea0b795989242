#!/usr/bin/env bash
# make demo: twinforge end to end on one machine, with real components only:
# lock check, build with an independent rebuild, a nondeterministic build
# caught, a vendored Go service reproduced, strict variations warning, keyless signing through a local Sigstore stack, verification
# against a policy, push and replication to local registries, read back and
# verified by outside tools (skopeo, crane, cosign).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
export GOTOOLCHAIN=go1.27.3

work=$(mktemp -d /tmp/twinforge-demo.XXXXXX)
export TWINFORGE_STATE_DIR="$work/state"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
# The demo must leave nothing running: checked at the end.
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
	for _ in $(seq 1 200); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "timed out waiting for $1" >&2
	return 1
}

step "1. lock: the example's inputs still match examples/hello/twinforge.lock"
twinforge lock --check examples/hello

step "2. build examples/hello, and rebuild it at the same time on an independent, varied daemon"
twinforge build --progress plain --oci-layout "$work/hello" examples/hello 2>"$work/build.log" || {
	tail -40 "$work/build.log"
	exit 1
}
digest=$(twinforge build --progress quiet --no-rebuild --output json --oci-layout "$work/hello-again" examples/hello |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
echo "an unrelated third build gives the same digest: $digest"
skopeo inspect --format 'skopeo reads {{.Digest}} from the layout' "oci:$work/hello"

step "3. a build that records the wall clock is caught: exit code 3 and a diff"
mkdir -p "$work/clock"
# The wall clock to the microsecond (busybox's date has no %N): the two
# builds' steps never run in the same microsecond, whereas the same second
# can happen when the rebuild's later start is absorbed by a faster setup.
printf '%s\n' 'FROM example.test/base:1' \
	"RUN adjtimex | awk '/tv_sec/ {s = \$2} /tv_usec/ {u = \$2} END {printf \"%d.%06d\\n\", s, u}' > /built-at" >"$work/clock/Dockerfile"
twinforge lock --image example.test/base:1=oci-layout:examples/base/out "$work/clock" >/dev/null
set +e
twinforge build --progress quiet --oci-layout "$work/clock-out" "$work/clock" 2>&1 | grep -E 'reproduction|built-at|differs' | head -8
code=${PIPESTATUS[0]}
set -e
echo "exit code: $code"
[ "$code" -eq 3 ]

step "4. examples/goservice: a vendored Go HTTP service, built in two stages onto an empty image, reproduces as it is"
twinforge lock --check examples/goservice
twinforge build --progress quiet --oci-layout "$work/goservice" examples/goservice | grep -E '^(digest|reproduction|strict)'

step "5. BuildKit pins umask and time zone: --strict-variations varies them too, and what only they change is a warning"
mkdir -p "$work/modes"
printf 'FROM example.test/base:1\nRUN mkdir -p /data && touch /data/a && echo content > /data/c\n' >"$work/modes/Dockerfile"
twinforge lock --image example.test/base:1=oci-layout:examples/base/out "$work/modes" >/dev/null
twinforge build --progress quiet --oci-layout "$work/modes-out" "$work/modes" | grep -E '^reproduction'
twinforge build --progress quiet --strict-variations --oci-layout "$work/modes-warn" "$work/modes" 2>&1 | grep -E '^(warning|reproduction|strict variations)'
set +e
twinforge build --progress quiet --strict-variations=fail --oci-layout "$work/modes-fail" "$work/modes" >/dev/null 2>&1
code=$?
set -e
echo "with --strict-variations=fail: exit code $code"
[ "$code" -eq 3 ]

step "6. a local Sigstore stack (OIDC issuer, Fulcio, timestamp authority, Rekor v2), built from pinned modules"
# Built first and run directly, so that the cleanup's signal reaches it (go
# run would not pass it on) and it stops every server it started.
go build -o "$work/sigstack" ./internal/sigstack/run
"$work/sigstack" -dir "$work/sigstore" -subject demo@twinforge.test >"$work/sigstore.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -f "$work/sigstore/env" ] && break; sleep 0.2; done
[ -f "$work/sigstore/env" ] || { cat "$work/sigstore.log"; exit 1; }
# shellcheck disable=SC1091
. "$work/sigstore/env"
echo "Fulcio $TWINFORGE_FULCIO_URL, TSA $TWINFORGE_TSA_URL, Rekor $TWINFORGE_REKOR_URL, issuer $TWINFORGE_OIDC_ISSUER"

step "7. build, rebuild, sign keyless and push by digest with the bundles as referrers"
# start_registry sets $registry; it runs in this shell, not in $(...), so
# the cleanup knows its process.
start_registry() { # $1: distribution (no referrers API) or referrers
	local port dir
	port=$(free_port)
	dir="$work/registry-$1-$port"
	mkdir -p "$dir"
	if [ "$1" = distribution ]; then
		cat >"$dir/config.yml" <<CFG
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/storage}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
CFG
		OTEL_TRACES_EXPORTER=none registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
	else
		twinforge-refregistry -addr "127.0.0.1:$port" -dir "$dir/blobs" >"$dir/log" 2>&1 &
	fi
	pids+=($!)
	wait_http "http://127.0.0.1:$port/v2/"
	registry="127.0.0.1:$port"
}
start_registry distribution
origin=$registry
start_registry referrers
eu=$registry
start_registry distribution
us=$registry
twinforge build --progress quiet --sign keyless --push "$origin/team/hello:1.0" --insecure \
	--oci-layout "$work/hello-signed" examples/hello | grep -E '^(digest|reproduction|signature|pushed|tag)'

step "8. verify against a policy: identity, builder, age, signed timestamp, log entry"
cat >"$work/policy.yaml" <<POLICY
apiVersion: twinforge.dev/v2
kind: Policy
identities:
  - issuer: $TWINFORGE_OIDC_ISSUER
    subject: demo@twinforge.test
builderIDs:
  - https://twinforge.dev/builders/local/v1
maxAge: 1h
POLICY
twinforge verify --policy "$work/policy.yaml" --trusted-root "$TWINFORGE_TRUSTED_ROOT" "$work/hello-signed"
sed 's/demo@twinforge.test/mallory@twinforge.test/' "$work/policy.yaml" >"$work/wrong.yaml"
set +e
twinforge verify --policy "$work/wrong.yaml" --trusted-root "$TWINFORGE_TRUSTED_ROOT" "$work/hello-signed" >/dev/null 2>"$work/refused"
code=$?
set -e
echo "another identity is refused with exit code $code: $(cut -c1-160 "$work/refused")"
[ "$code" -eq 4 ]

step "9. replicate to two regional registries (with and without the referrers API); every copy checked"
twinforge replicate --insecure "$origin/team/hello@$digest" "$eu/team/hello" "$us/team/hello"
for r in "$origin" "$eu" "$us"; do
	ref="$r/team/hello@$digest"
	echo "crane reads $(crane digest --insecure "$ref") from $r"
	cosign verify-attestation --new-bundle-format --type slsaprovenance1 --trusted-root "$TWINFORGE_TRUSTED_ROOT" \
		--certificate-identity demo@twinforge.test --certificate-oidc-issuer "$TWINFORGE_OIDC_ISSUER" \
		--insecure-ignore-sct --use-signed-timestamps --allow-insecure-registry "$ref" >/dev/null 2>"$work/cosign.log" ||
		{ cat "$work/cosign.log"; exit 1; }
	echo "cosign verifies the provenance in $r"
done

step "done: every step ran against real buildkitd, runc, registries and Sigstore services"
cleanup
trap - EXIT
if pgrep -f "$work" >/dev/null; then
	echo "processes of the demo are still running:" >&2
	pgrep -fa "$work" >&2
	exit 1
fi
