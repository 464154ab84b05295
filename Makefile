# Two entry points: `make demo` (set up + run the demo) and `make test`.
#
# `make test` (what .ci/run calls) builds two environments from requirements/ and runs:
#   1. the whole suite on ROS 2 Kilted wheels (rclpy 9.1, Fast DDS 3.x) in $(VENV);
#   2. the ROS integration tests (JAZZY_TESTS: every test/integration test marked `ros`, and
#      the launch tests) on ROS 2 Jazzy wheels (rclpy 7.1, Fast DDS 2.14) in $(JAZZY_VENV).
# Where ../shared/vendor/ros2_launch exists, the launch system's pure-Python sources are
# pip-installed from there into both (not on PyPI; nothing of it is copied into the repo).
PYTHON ?= python3
VENV ?= .venv
JAZZY_VENV ?= .venv-jazzy
VENDOR_LAUNCH ?= ../shared/vendor/ros2_launch
LAUNCH_PACKAGES := launch launch_xml launch_yaml launch_testing launch_ros launch_testing_ros
PYTEST_ARGS ?= -q
JAZZY_TESTS ?= test/integration -m ros
PY := $(VENV)/bin/python
JAZZY_PY := $(JAZZY_VENV)/bin/python
STAMP := $(VENV)/.installed
JAZZY_STAMP := $(JAZZY_VENV)/.installed
# The checkout's own code, also in the processes the tests start.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: setup setup-jazzy vendor-launch demo test test-kilted test-jazzy bench quality clean

# $(call make_venv,VENV,requirements file)
define make_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --upgrade pip setuptools wheel
	$(1)/bin/python -m pip install -r $(2) -e .
	touch $(1)/.installed
endef

# $(call install_vendor_launch,VENV): from a scratch copy, so that nothing is built in ../shared.
define install_vendor_launch
	@if [ -d "$(VENDOR_LAUNCH)" ]; then \
	  if [ ! -f $(1)/.vendor-launch ]; then \
	    rm -rf $(1)/vendor-src && mkdir -p $(1)/vendor-src && \
	    for p in $(LAUNCH_PACKAGES); do cp -r "$(VENDOR_LAUNCH)/$$p" $(1)/vendor-src/; \
	      rm -rf $(1)/vendor-src/$$p/build $(1)/vendor-src/$$p/*.egg-info; done && \
	    $(1)/bin/python -m pip install -q --no-deps --no-build-isolation \
	      $(addprefix $(1)/vendor-src/,$(LAUNCH_PACKAGES)) && \
	    rm -rf $(1)/vendor-src && touch $(1)/.vendor-launch; \
	  fi; \
	else echo "$(VENDOR_LAUNCH) not found: the launch-system tests will skip"; fi
endef

# pytest exit code 5 is "no tests collected" (a selection with nothing to run here): not a
# failure. $(call run_pytest,PYTHON,ARGS)
run_pytest = $(1) -m pytest $(2) $(PYTEST_ARGS) || { code=$$?; [ $$code -eq 5 ] && \
	echo "pytest: no tests collected for: $(2)"; [ $$code -eq 5 ]; }

$(STAMP): setup.py requirements/cpu.txt requirements/common.txt requirements/dev.txt
	$(call make_venv,$(VENV),requirements/dev.txt)

$(JAZZY_STAMP): setup.py requirements/cpu.txt requirements/common.txt requirements/jazzy.txt
	$(call make_venv,$(JAZZY_VENV),requirements/jazzy.txt)

setup: $(STAMP)

setup-jazzy: $(JAZZY_STAMP)

vendor-launch: $(STAMP) $(JAZZY_STAMP)
	$(call install_vendor_launch,$(VENV))
	$(call install_vendor_launch,$(JAZZY_VENV))

demo: $(STAMP)
	$(VENV)/bin/lutfuse demo

# Both tiers run even when the first fails; the target fails if either did.
test: vendor-launch
	@rc=0; $(call run_pytest,$(PY),test) || rc=1; \
	$(call run_pytest,$(JAZZY_PY),$(JAZZY_TESTS)) || rc=1; exit $$rc

test-kilted: vendor-launch
	$(call run_pytest,$(PY),test)

test-jazzy: vendor-launch
	$(call run_pytest,$(JAZZY_PY),$(JAZZY_TESTS))

bench: $(STAMP)
	$(PY) benchmarks/bench_pipeline.py

quality: $(STAMP)
	LUTFUSE=$(VENV)/bin/lutfuse scripts/quality_report.sh reports/quality ../shared

clean:
	rm -rf $(VENV) $(JAZZY_VENV) build install log lutfuse_demo
