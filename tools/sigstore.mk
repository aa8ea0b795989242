# Sigstore stack for tests and `make demo`: Fulcio, the timestamp authority,
# Rekor v2 (rekor-tiles, POSIX storage), an OIDC issuer and cosign (interop
# checks). Each is built from its own pinned tool module under tools/<name>/,
# once per version, cached outside the clone under $(TOOLS_CACHE), and
# symlinked into $(BIN). Included from the Makefile, which sets GO, BIN,
# TOOLS_CACHE and exports GOTOOLCHAIN.

.PHONY: sigstore-tools

# modversion FILE MODULE: the version FILE (a go.mod) requires MODULE at.
sigstore_modversion = $(shell awk '{for(i=1;i<NF;i++) if($$i=="$(2)"){print $$(i+1); exit}}' $(1))
sigstore_ldflags = -s -w -X sigs.k8s.io/release-utils/version.gitVersion=$(1)

FULCIO_TOOL_VERSION := $(call sigstore_modversion,tools/fulcio/go.mod,github.com/sigstore/fulcio)
TSA_TOOL_VERSION    := $(call sigstore_modversion,tools/tsa/go.mod,github.com/sigstore/timestamp-authority)
REKOR_TOOL_VERSION  := $(call sigstore_modversion,tools/rekor/go.mod,github.com/sigstore/rekor-tiles/v2)
COSIGN_TOOL_VERSION := $(call sigstore_modversion,tools/cosign/go.mod,github.com/sigstore/cosign/v2)
MOCKOIDC_VERSION    := $(call sigstore_modversion,tools/oidc/go.mod,github.com/oauth2-proxy/mockoidc)
# The OIDC issuer and the timestamp server are our own small mains over the
# pinned modules: their cache keys also cover the sources, so an edit rebuilds.
sigstore_srchash = $(shell cat $(1)/main.go $(1)/go.sum | sha256sum | cut -c1-12)
OIDC_TOOL_VERSION   := $(MOCKOIDC_VERSION)-$(call sigstore_srchash,tools/oidc)
TSA_CACHE_VERSION   := $(TSA_TOOL_VERSION)-$(call sigstore_srchash,tools/tsa)

FULCIO_DIR := $(TOOLS_CACHE)/fulcio-$(FULCIO_TOOL_VERSION)
TSA_DIR    := $(TOOLS_CACHE)/timestamp-authority-$(TSA_CACHE_VERSION)
REKOR_DIR  := $(TOOLS_CACHE)/rekor-tiles-$(REKOR_TOOL_VERSION)
COSIGN_DIR := $(TOOLS_CACHE)/cosign-$(COSIGN_TOOL_VERSION)
OIDC_DIR   := $(TOOLS_CACHE)/twinforge-oidc-$(OIDC_TOOL_VERSION)

## sigstore-tools: fulcio, timestamp-server, rekor-server, twinforge-oidc and cosign in bin/
sigstore-tools: $(BIN)/fulcio $(BIN)/timestamp-server $(BIN)/rekor-server $(BIN)/twinforge-oidc $(BIN)/cosign

# sigstore_build DIR NAME MODULE-DIR PACKAGE VERSION
define sigstore_build
	@echo "building $(2) $(5) (once per version, cached in $(1))"
	@rm -rf $(1).tmp && mkdir -p $(1).tmp
	cd $(3) && $(GO) build -trimpath -ldflags "$(call sigstore_ldflags,$(5))" -o $(1).tmp/$(2) $(4)
	@rm -rf $(1) && mv $(1).tmp $(1)
endef

$(FULCIO_DIR)/fulcio:
	$(call sigstore_build,$(FULCIO_DIR),fulcio,tools/fulcio,github.com/sigstore/fulcio,$(FULCIO_TOOL_VERSION))

$(TSA_DIR)/timestamp-server:
	$(call sigstore_build,$(TSA_DIR),timestamp-server,tools/tsa,.,$(TSA_TOOL_VERSION))

$(REKOR_DIR)/rekor-server:
	$(call sigstore_build,$(REKOR_DIR),rekor-server,tools/rekor,github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix,$(REKOR_TOOL_VERSION))

$(COSIGN_DIR)/cosign:
	$(call sigstore_build,$(COSIGN_DIR),cosign,tools/cosign,github.com/sigstore/cosign/v2/cmd/cosign,$(COSIGN_TOOL_VERSION))

$(OIDC_DIR)/twinforge-oidc:
	$(call sigstore_build,$(OIDC_DIR),twinforge-oidc,tools/oidc,.,$(OIDC_TOOL_VERSION))

$(BIN)/fulcio: $(FULCIO_DIR)/fulcio
$(BIN)/timestamp-server: $(TSA_DIR)/timestamp-server
$(BIN)/rekor-server: $(REKOR_DIR)/rekor-server
$(BIN)/cosign: $(COSIGN_DIR)/cosign
$(BIN)/twinforge-oidc: $(OIDC_DIR)/twinforge-oidc
$(BIN)/fulcio $(BIN)/timestamp-server $(BIN)/rekor-server $(BIN)/cosign $(BIN)/twinforge-oidc:
	@mkdir -p $(BIN)
	@ln -sf $< $@
