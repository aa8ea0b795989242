# The Kubernetes node of the tests (internal/kubetest.StartNode): containerd
# with its runc shim and ctr, the CNI plugins pods get their network from, and
# kubelet, kube-scheduler and kube-controller-manager. containerd and the CNI
# plugins are each built from their own pinned tool module (tools/containerd,
# tools/cni); the Kubernetes binaries from the same tools/kubernetes/kube
# module as kube-apiserver, at the same version, into a cache entry of their
# own (kubernetes-node-VERSION), so that the kube-apiserver entry is never
# rebuilt or replaced. runc comes from Debian (APT_PACKAGES). Included from the
# Makefile, after tools/kubernetes.mk (KUBE_TOOL_VERSION, kube_ldflags).
# Cold build on 2 busy cores: containerd about 2.5 min, the CNI plugins under
# 1, the node's Kubernetes binaries about 6 on top of kube-apiserver's.

.PHONY: node-tools

nodetools_modversion = $(shell awk '{for(i=1;i<NF;i++) if($$i=="$(2)"){print $$(i+1); exit}}' $(1))

CONTAINERD_TOOL_VERSION := $(call nodetools_modversion,tools/containerd/go.mod,github.com/containerd/containerd/v2)
CNI_TOOL_VERSION := $(call nodetools_modversion,tools/cni/go.mod,github.com/containernetworking/plugins)

CONTAINERD_DIR := $(TOOLS_CACHE)/containerd-$(CONTAINERD_TOOL_VERSION)
CNI_DIR        := $(TOOLS_CACHE)/cni-plugins-$(CNI_TOOL_VERSION)
KUBE_NODE_DIR  := $(TOOLS_CACHE)/kubernetes-node-$(KUBE_TOOL_VERSION)

CONTAINERD_BINS := containerd containerd-shim-runc-v2 ctr
CNI_PLUGINS     := bridge host-local loopback
KUBE_NODE_BINS  := kubelet kube-scheduler kube-controller-manager

## node-tools: bin/containerd, bin/containerd-shim-runc-v2, bin/ctr, bin/cni/*, bin/kubelet, bin/kube-scheduler, bin/kube-controller-manager
node-tools: $(addprefix $(BIN)/,$(CONTAINERD_BINS) $(KUBE_NODE_BINS)) $(addprefix $(BIN)/cni/,$(CNI_PLUGINS))

# btrfs, devmapper and zfs snapshotters are left out: the node uses overlayfs,
# and btrfs would need C headers.
$(addprefix $(CONTAINERD_DIR)/,$(CONTAINERD_BINS)) &:
	@echo "building containerd $(CONTAINERD_TOOL_VERSION) (once per version, cached in $(CONTAINERD_DIR))"
	@rm -rf $(CONTAINERD_DIR).tmp && mkdir -p $(CONTAINERD_DIR).tmp
	cd tools/containerd && $(GO) build -trimpath -tags "no_btrfs no_devmapper no_zfs" \
		-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_TOOL_VERSION)" \
		-o $(CONTAINERD_DIR).tmp/ $(addprefix github.com/containerd/containerd/v2/cmd/,$(CONTAINERD_BINS))
	@rm -rf $(CONTAINERD_DIR) && mv $(CONTAINERD_DIR).tmp $(CONTAINERD_DIR)

$(addprefix $(CNI_DIR)/,$(CNI_PLUGINS)) &:
	@echo "building the CNI plugins $(CNI_TOOL_VERSION) (once per version, cached in $(CNI_DIR))"
	@rm -rf $(CNI_DIR).tmp && mkdir -p $(CNI_DIR).tmp
	cd tools/cni && $(GO) build -trimpath -ldflags "-s -w" -o $(CNI_DIR).tmp/ \
		github.com/containernetworking/plugins/plugins/ipam/host-local \
		github.com/containernetworking/plugins/plugins/main/bridge \
		github.com/containernetworking/plugins/plugins/main/loopback
	@rm -rf $(CNI_DIR) && mv $(CNI_DIR).tmp $(CNI_DIR)

$(addprefix $(KUBE_NODE_DIR)/,$(KUBE_NODE_BINS)) &:
	@echo "building kubelet, kube-scheduler and kube-controller-manager $(KUBE_TOOL_VERSION) (once per version, cached in $(KUBE_NODE_DIR))"
	@rm -rf $(KUBE_NODE_DIR).tmp && mkdir -p $(KUBE_NODE_DIR).tmp
	cd tools/kubernetes/kube && $(GO) build -trimpath -ldflags "$(kube_ldflags)" -o $(KUBE_NODE_DIR).tmp/ \
		$(addprefix k8s.io/kubernetes/cmd/,$(KUBE_NODE_BINS))
	@rm -rf $(KUBE_NODE_DIR) && mv $(KUBE_NODE_DIR).tmp $(KUBE_NODE_DIR)

$(addprefix $(BIN)/,$(CONTAINERD_BINS)): $(BIN)/%: $(CONTAINERD_DIR)/%
	@mkdir -p $(BIN)
	@ln -sf $< $@

$(addprefix $(BIN)/,$(KUBE_NODE_BINS)): $(BIN)/%: $(KUBE_NODE_DIR)/%
	@mkdir -p $(BIN)
	@ln -sf $< $@

$(addprefix $(BIN)/cni/,$(CNI_PLUGINS)): $(BIN)/cni/%: $(CNI_DIR)/%
	@mkdir -p $(BIN)/cni
	@ln -sf $< $@
