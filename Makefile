.PHONY: demo test lint lock drift bench
# @: make prints no echo of the recipe, so `make demo > chains.jsonl` holds only chains;
# and no "Entering directory" lines on stdout when called from another make.
MAKEFLAGS += --no-print-directory
demo:  ## install from the runtime lock, replay the bundled attack scenario, print the chains
	@scripts/demo.sh
test:  ## the whole suite: set-up (venv from the lock, sysdig, Kafka jars, etcd + kube-apiserver), ruff, mypy, pytest
	@scripts/test.sh
lint:
	@scripts/setup-venv.sh dev && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
lock:  ## re-resolve requirements/*.lock from pyproject.toml (keeps pins; `make lock ARGS=--upgrade` moves them)
	@scripts/lock.sh $(ARGS)
drift:  ## the unit tier on the newest versions pyproject allows (not the lock): drift seen on purpose
	@scripts/drift.sh
