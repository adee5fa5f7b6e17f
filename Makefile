# Two commands do everything, as root on Debian/Ubuntu: `make demo`, `make test`.
# Both run the idempotent `make setup` first.
PY      := .venv/bin/python
DEMO    := pakemon/lab/demo.pcap
DEMOLOG := demo-logs

.PHONY: setup demo demo-offline test bench clean

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
	$(PY) bench/evasion/run.py
	$(PY) bench/floods.py
	$(PY) bench/live_bench.py

# Regenerate the demo capture after changing pakemon/lab/samples.py.
demo-pcap: setup
	$(PY) -m pakemon.lab.samples demo $(DEMO)

clean:
	rm -rf $(DEMOLOG) pakemon-logs bench/out .pytest_cache
