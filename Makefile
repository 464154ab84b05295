# Two entry points: `make demo` (set up + run the demo) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench quality clean

$(STAMP): setup.py requirements/cpu.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install -r requirements/dev.txt -e .
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lutfuse demo

test: $(STAMP)
	$(PY) -m pytest test -q

bench: $(STAMP)
	$(PY) benchmarks/bench_pipeline.py

quality: $(STAMP)
	LUTFUSE=$(VENV)/bin/lutfuse scripts/quality_report.sh reports/quality ../shared

clean:
	rm -rf $(VENV) build install log lutfuse_demo
