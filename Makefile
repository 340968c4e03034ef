# The two commands of the README. Both set up .venv (and the weights cache) on first use.
.PHONY: app test bench

app:
	scripts/setup.sh
	.venv/bin/python app.py

test:
	scripts/setup.sh dev
	.venv/bin/python -m pytest -q tests

bench:
	scripts/setup.sh
	.venv/bin/python -m engine bench
