# The two commands of README.md. Both install what they need first (scripts/bootstrap.sh). `make test` also
# builds the documentation site (mkdocs.yml, into the ignored site/) in strict mode: a broken link fails it.
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
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir site

lint:
	.venv/bin/ruff check gateway tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:
	@scripts/bootstrap.sh run
	.venv/bin/python bench/decision.py
