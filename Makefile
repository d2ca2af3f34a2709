# Shortcuts for developers; the README's two commands are scripts/start and scripts/test.
.PHONY: start test ci bench lint clean

start:
	scripts/start

test:
	scripts/test

ci:
	.ci/run

bench:
	.venv/bin/python bench/run_all.py

clean:
	rm -rf .venv var .pytest_cache .hypothesis tests/artifacts
