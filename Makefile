.PHONY: demo test lint bench
demo:  ## install, then replay the bundled attack scenario and print the confirmed chains
	scripts/demo.sh
test:  ## the whole suite: set-up (venv, sysdig, Kafka jars), ruff, mypy, pytest
	scripts/test.sh
lint:
	scripts/setup-venv.sh dev && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
