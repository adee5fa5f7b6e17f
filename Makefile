# Two commands do everything, as root on Debian/Ubuntu: `make demo`, `make test`.
# Both run the idempotent `make setup` first.
PY      := .venv/bin/python
DEMO    := pakemon/lab/demo.pcap
DEMOLOG := demo-logs

.PHONY: setup demo demo-offline test bench evaluate clean conformance

setup:
	@scripts/setup.sh

# The live sensor in two network namespaces (root): an HTTP server, real
# attacks and benign requests from a client, the alerts and counters table.
demo: setup
	rm -rf $(DEMOLOG)
	.venv/bin/pakemon-xdp lab --log-dir $(DEMOLOG)

# The same engine over the built-in lab capture (no root, no kernel sensor).
demo-offline: setup
	rm -rf $(DEMOLOG)
	.venv/bin/pakemon-xdp read $(DEMO) --log-dir $(DEMOLOG)
	@echo; echo "== $(DEMOLOG)/alert.log (first entries) =="; head -n 24 $(DEMOLOG)/alert.log

test: setup
	$(PY) -m pytest -q -n 2 tests

bench: setup
	$(PY) bench/run_bench.py
	$(PY) bench/et_bench.py
	$(PY) bench/evasion/run.py
	$(PY) bench/floods.py
	$(PY) bench/amplify.py
	$(PY) bench/amplify.py --et
	$(PY) bench/live_bench.py

# The whole suricata-verify corpus (../shared/conformance/suricata-verify)
# through `pakemon-xdp read`: per-case table, pass rate, bench/out/conformance.json.
conformance: setup
	$(PY) bench/conformance.py

# The paper's section 4 measured live (root): docs/evaluation.md, its PNGs
# in docs/evaluation/ and results.json. About 45 minutes with the default
# 30-minute stability run; e.g. `make evaluate STABILITY_MINUTES=2
# EVALUATE_ARGS=--quick` for a short pass.
STABILITY_MINUTES ?= 30
EVALUATE_ARGS ?=
evaluate: setup
	$(PY) -m bench.evaluate.run --stability-minutes $(STABILITY_MINUTES) $(EVALUATE_ARGS)

# Regenerate the demo capture after changing pakemon/lab/samples.py.
demo-pcap: setup
	$(PY) -m pakemon.lab.samples demo $(DEMO)

clean:
	rm -rf $(DEMOLOG) pakemon-logs bench/out .pytest_cache
