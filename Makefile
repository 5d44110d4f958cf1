# Danlu: two commands set everything up on a fresh machine.
#   make run    create .venv, install, start the GUI on http://127.0.0.1:7860 with the demo model
#   make test   the same set-up, the GGUF tools, Debian's chromium for the browser tests and slurm-wlm +
#               munge for the Slurm tests (a one-node cluster the tests start and stop themselves), then
#               every test
#   make gguf   (optional for `make run`) build llama.cpp once for GGUF export: about 4 minutes on 2 cores,
#               then pip's wheel cache makes it seconds; the first GGUF export does this itself otherwise
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GGUF_STAMP := $(VENV)/.gguf-installed
export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED ?= False

.PHONY: run test venv gguf chromium slurm clean

$(STAMP): requirements.txt requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch is pinned to the CPU wheel kept on this machine; one pip call keeps it from being replaced
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-test.txt > $(VENV)/pip.log 2>&1 \
	  || { grep -v "is ignored: it is neither a file nor a directory" $(VENV)/pip.log; exit 1; }
	$(PY) -c "import torch, gradio, transformers, peft, bitsandbytes, playwright" && touch $(STAMP)

venv: $(STAMP)

# llama.cpp's converter and quantiser (requirements-gguf.txt): pip builds llama-cpp-python from its source
# archive with CMake (CPU only; CMAKE_ARGS in core/gguf_tools.py) and the converter is unpacked into
# ~/.cache/danlu. Needs cmake and a C++ compiler (Debian: apt-get install cmake g++).
$(GGUF_STAMP): $(STAMP) requirements-gguf.txt core/gguf_tools.py
	@command -v cmake >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1 || { \
	  echo "installing Debian's cmake and g++ for the GGUF tools"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq cmake g++ >/dev/null; }
	$(PY) -m core.gguf_tools install > $(VENV)/gguf.log 2>&1 || { tail -40 $(VENV)/gguf.log; exit 1; }
	@tail -1 $(VENV)/gguf.log
	touch $(GGUF_STAMP)

gguf: $(GGUF_STAMP)

run: $(STAMP)
	$(PY) app.py

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# the Slurm tests start a real one-node cluster (tests/slurm/cluster.py) from Debian's packages
slurm:
	@{ command -v sbatch >/dev/null 2>&1 && test -x /usr/sbin/slurmctld && test -x /usr/sbin/slurmd \
	   && test -x /usr/sbin/munged; } || { \
	  echo "installing Debian's slurm-wlm and munge for the Slurm tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq slurm-wlm munge >/dev/null; }

test: $(STAMP) $(GGUF_STAMP) chromium slurm
	@$(PY) -m pytest -q tests; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
