# Registry tools for the distribute tests: the CNCF distribution registry
# (no referrers API), a go-containerregistry registry with the OCI 1.1
# referrers API, and crane as an independent reader. Each is built from its
# own module under tools/, once per version, cached in $(TOOLS_CACHE) and
# linked into $(BIN). Included by the Makefile, which defines GO, BIN,
# TOOLS_CACHE and exports GOTOOLCHAIN.

# regtools_modversion reads the version a tool module's go.mod pins for a module.
regtools_modversion = $(shell awk '{for(i=1;i<NF;i++) if($$i=="$(2)"){print $$(i+1); exit}}' $(1)/go.mod)

DISTRIBUTION_VERSION := $(call regtools_modversion,tools/registry,github.com/distribution/distribution/v3)
GGCR_REFREGISTRY_VERSION := $(call regtools_modversion,tools/refregistry,github.com/google/go-containerregistry)
GGCR_CRANE_VERSION := $(call regtools_modversion,tools/crane,github.com/google/go-containerregistry)

REGISTRY_DIR    := $(TOOLS_CACHE)/registry-$(DISTRIBUTION_VERSION)
REFREGISTRY_DIR := $(TOOLS_CACHE)/refregistry-$(GGCR_REFREGISTRY_VERSION)
CRANE_DIR       := $(TOOLS_CACHE)/crane-$(GGCR_CRANE_VERSION)

.PHONY: registry-tools
## registry-tools: bin/registry, bin/twinforge-refregistry and bin/crane
registry-tools: $(BIN)/registry $(BIN)/twinforge-refregistry $(BIN)/crane

$(REGISTRY_DIR)/registry:
	@echo "building registry $(DISTRIBUTION_VERSION) (once per version, cached in $(REGISTRY_DIR))"
	@mkdir -p $(REGISTRY_DIR).tmp
	cd tools/registry && $(GO) build -trimpath -ldflags "-s -w" -o $(REGISTRY_DIR).tmp/ github.com/distribution/distribution/v3/cmd/registry
	@rm -rf $(REGISTRY_DIR) && mv $(REGISTRY_DIR).tmp $(REGISTRY_DIR)

$(REFREGISTRY_DIR)/twinforge-refregistry: tools/refregistry/main.go
	@echo "building twinforge-refregistry on go-containerregistry $(GGCR_REFREGISTRY_VERSION)"
	@mkdir -p $(REFREGISTRY_DIR).tmp
	cd tools/refregistry && $(GO) build -trimpath -ldflags "-s -w" -o $(REFREGISTRY_DIR).tmp/twinforge-refregistry .
	@rm -rf $(REFREGISTRY_DIR) && mv $(REFREGISTRY_DIR).tmp $(REFREGISTRY_DIR)

$(CRANE_DIR)/crane:
	@echo "building crane $(GGCR_CRANE_VERSION) (once per version, cached in $(CRANE_DIR))"
	@mkdir -p $(CRANE_DIR).tmp
	cd tools/crane && $(GO) build -trimpath -ldflags "-s -w" -o $(CRANE_DIR).tmp/ github.com/google/go-containerregistry/cmd/crane
	@rm -rf $(CRANE_DIR) && mv $(CRANE_DIR).tmp $(CRANE_DIR)

$(BIN)/registry: $(REGISTRY_DIR)/registry
$(BIN)/twinforge-refregistry: $(REFREGISTRY_DIR)/twinforge-refregistry
$(BIN)/crane: $(CRANE_DIR)/crane
$(BIN)/registry $(BIN)/twinforge-refregistry $(BIN)/crane:
	@mkdir -p $(BIN)
	@ln -sf $< $@
