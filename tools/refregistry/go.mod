module github.com/twinforge/twinforge/tools/refregistry

go 1.27

require github.com/google/go-containerregistry v0.22.1
