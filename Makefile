# Developer shortcuts. The test suite itself: ./run.sh test (what CI runs).
#
#   make chaos-fast   the chaos suite's CI subset (not @slow), its table on stdout
#   make chaos-all    every chaos scenario, soak variants included; writes the
#                     table of docs/RELIABILITY.md from this run's figures

PYTHON ?= .venv/bin/python
PYTEST ?= .venv/bin/pytest
CHAOS_OUT ?= bench/results/chaos
CHAOS_ARGS ?=

.PHONY: chaos-fast chaos-all

chaos-fast:
	@mkdir -p $(CHAOS_OUT) && rm -f $(CHAOS_OUT)/fast.jsonl
	EBS_CHAOS_RESULTS=$(CHAOS_OUT)/fast.jsonl $(PYTEST) tests/chaos -m "not slow" -rxX \
		--durations=0 $(CHAOS_ARGS); status=$$?; \
	$(PYTHON) bench/chaos_report.py $(CHAOS_OUT)/fast.jsonl; exit $$status

chaos-all:
	@mkdir -p $(CHAOS_OUT) && rm -f $(CHAOS_OUT)/all.jsonl
	EBS_CHAOS_RESULTS=$(CHAOS_OUT)/all.jsonl $(PYTEST) tests/chaos -rxX --durations=0 \
		$(CHAOS_ARGS); status=$$?; \
	$(PYTHON) bench/chaos_report.py $(CHAOS_OUT)/all.jsonl --write docs/RELIABILITY.md; \
	exit $$status
