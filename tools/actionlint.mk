# actionlint, the GitHub Actions workflow checker, built from the version its
# tool module tools/actionlint pins, once per version, cached in
# $(TOOLS_CACHE) and linked into $(BIN) (the pattern of tools/registry.mk).
# Included by the Makefile, which defines GO, BIN, TOOLS_CACHE and exports
# GOTOOLCHAIN.
#
# lint-workflows checks this repository's workflows and the example caller
# in examples/github (a caller for another repository, linted by path).
# actionlint runs shellcheck on every run: script when shellcheck is on PATH
# (`apt-get install shellcheck`, which apt-deps does not require); without
# it, the shell scripts are not checked and the target says so.

actionlint_modversion = $(shell awk '{for(i=1;i<NF;i++) if($$i=="$(2)"){print $$(i+1); exit}}' $(1)/go.mod)

ACTIONLINT_VERSION := $(call actionlint_modversion,tools/actionlint,github.com/rhysd/actionlint)
ACTIONLINT_DIR     := $(TOOLS_CACHE)/actionlint-$(ACTIONLINT_VERSION)
WORKFLOW_FILES     := $(wildcard .github/workflows/*.yml) $(wildcard examples/github/*.yml)

.PHONY: actionlint-tools lint-workflows
## actionlint-tools: bin/actionlint
actionlint-tools: $(BIN)/actionlint

$(ACTIONLINT_DIR)/actionlint:
	@echo "building actionlint $(ACTIONLINT_VERSION) (once per version, cached in $(ACTIONLINT_DIR))"
	@rm -rf $(ACTIONLINT_DIR).tmp && mkdir -p $(ACTIONLINT_DIR).tmp
	cd tools/actionlint && $(GO) build -trimpath \
		-ldflags "-s -w -X github.com/rhysd/actionlint.version=$(ACTIONLINT_VERSION)" \
		-o $(ACTIONLINT_DIR).tmp/ github.com/rhysd/actionlint/cmd/actionlint
	@rm -rf $(ACTIONLINT_DIR) && mv $(ACTIONLINT_DIR).tmp $(ACTIONLINT_DIR)

$(BIN)/actionlint: $(ACTIONLINT_DIR)/actionlint
	@mkdir -p $(BIN)
	@ln -sf $< $@

## lint-workflows: actionlint on .github/workflows/*.yml and examples/github/*.yml
lint-workflows: $(BIN)/actionlint
	@if command -v shellcheck >/dev/null 2>&1; then \
		echo "actionlint $(ACTIONLINT_VERSION) (run: scripts checked by $$(command -v shellcheck))"; \
		$(BIN)/actionlint $(WORKFLOW_FILES); \
	else \
		echo "actionlint $(ACTIONLINT_VERSION) (shellcheck not installed: run: scripts are not checked)"; \
		$(BIN)/actionlint -shellcheck= $(WORKFLOW_FILES); \
	fi
