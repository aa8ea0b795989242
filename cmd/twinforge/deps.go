package main

import (
	_ "github.com/containerd/containerd/v2/plugins/content/local"
	_ "github.com/google/go-containerregistry/pkg/v1/layout"
	_ "github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/frontend/dockerfile/instructions"
	_ "github.com/moby/buildkit/util/progress/progressui"
	_ "github.com/moby/patternmatcher/ignorefile"
	_ "github.com/urfave/cli/v2"
	_ "golang.org/x/sync/errgroup"
)

func main() {}
