# Kubernetes for the admission webhook tests: etcd, kube-apiserver and
# kubectl. etcd and Kubernetes are each built from their own pinned tool
# module (tools/kubernetes/etcd, tools/kubernetes/kube: `go install` refuses
# modules with replace directives, and the two would otherwise force their
# dependency versions on each other), once per version, cached outside the
# clone under $(TOOLS_CACHE), and symlinked into $(BIN). Included from the
# Makefile, which defines GO, BIN, TOOLS_CACHE and exports GOTOOLCHAIN.
# A cold build takes about 6 minutes on 2 cores (etcd under 1, Kubernetes 5).

.PHONY: kube-tools

# kubetools_modversion GO.MOD MODULE: the version GO.MOD requires MODULE at.
kubetools_modversion = $(shell awk '{for(i=1;i<NF;i++) if($$i=="$(2)"){print $$(i+1); exit}}' $(1))

ETCD_TOOL_VERSION := $(call kubetools_modversion,tools/kubernetes/etcd/go.mod,go.etcd.io/etcd/server/v3)
KUBE_TOOL_VERSION := $(call kubetools_modversion,tools/kubernetes/kube/go.mod,k8s.io/kubernetes)
# v1.37.2 -> 1 and 37, for the version the binaries report.
KUBE_MAJOR := $(word 1,$(subst ., ,$(patsubst v%,%,$(KUBE_TOOL_VERSION))))
KUBE_MINOR := $(word 2,$(subst ., ,$(patsubst v%,%,$(KUBE_TOOL_VERSION))))

ETCD_DIR := $(TOOLS_CACHE)/etcd-$(ETCD_TOOL_VERSION)
KUBE_DIR := $(TOOLS_CACHE)/kubernetes-$(KUBE_TOOL_VERSION)

kube_ldflags = -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_TOOL_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(KUBE_MAJOR) \
	-X k8s.io/component-base/version.gitMinor=$(KUBE_MINOR) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_TOOL_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=$(KUBE_MAJOR) \
	-X k8s.io/client-go/pkg/version.gitMinor=$(KUBE_MINOR)

## kube-tools: bin/etcd, bin/kube-apiserver and bin/kubectl
kube-tools: $(BIN)/etcd $(BIN)/kube-apiserver $(BIN)/kubectl

$(ETCD_DIR)/etcd:
	@echo "building etcd $(ETCD_TOOL_VERSION) (once per version, cached in $(ETCD_DIR))"
	@rm -rf $(ETCD_DIR).tmp && mkdir -p $(ETCD_DIR).tmp
	cd tools/kubernetes/etcd && $(GO) build -trimpath -ldflags "-s -w" -o $(ETCD_DIR).tmp/etcd go.etcd.io/etcd/server/v3
	@rm -rf $(ETCD_DIR) && mv $(ETCD_DIR).tmp $(ETCD_DIR)

$(KUBE_DIR)/kube-apiserver $(KUBE_DIR)/kubectl &:
	@echo "building kube-apiserver and kubectl $(KUBE_TOOL_VERSION) (once per version, cached in $(KUBE_DIR); ~5 min cold)"
	@rm -rf $(KUBE_DIR).tmp && mkdir -p $(KUBE_DIR).tmp
	cd tools/kubernetes/kube && $(GO) build -trimpath -ldflags "$(kube_ldflags)" -o $(KUBE_DIR).tmp/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
	@rm -rf $(KUBE_DIR) && mv $(KUBE_DIR).tmp $(KUBE_DIR)

$(BIN)/etcd: $(ETCD_DIR)/etcd
$(BIN)/kube-apiserver: $(KUBE_DIR)/kube-apiserver
$(BIN)/kubectl: $(KUBE_DIR)/kubectl
$(BIN)/etcd $(BIN)/kube-apiserver $(BIN)/kubectl:
	@mkdir -p $(BIN)
	@ln -sf $< $@
