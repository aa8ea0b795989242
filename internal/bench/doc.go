// Package bench measures twinforge against plain BuildKit in the same run:
// a build (daemon start included on both sides) against buildctl on a fresh
// buildkitd, and a verified build (build ∥ rebuild) against two buildctl
// builds run concurrently on two fresh daemons. `make bench` runs it and
// writes bench/results.txt. Targets are stated there, never asserted.
package bench
