# The two commands of README.md. Both install what they need first (scripts/bootstrap.sh).
.PHONY: run test bench lint

run:
	@scripts/bootstrap.sh run
	.venv/bin/dnc-gateway serve

test:
	@scripts/bootstrap.sh test
	.venv/bin/python -m pytest -q
	.venv/bin/ruff check gateway tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

lint:
	.venv/bin/ruff check gateway tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:
	@scripts/bootstrap.sh run
	.venv/bin/python bench/decision.py
