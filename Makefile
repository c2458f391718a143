.PHONY: run test lint bench deps lock
VENV := .venv/bin

deps:
	@scripts/bootstrap.sh

run: deps
	$(VENV)/ari-app demo

test: deps
	$(VENV)/ari-app stack build
	$(VENV)/python -m pytest -q -ra $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: deps
	$(VENV)/ruff check ari_app tests benchmarks
	$(VENV)/ruff format --check ari_app tests benchmarks

bench: deps
	$(VENV)/python benchmarks/pacing.py

# Regenerate requirements.lock after changing pyproject.toml's dependencies (needs the package index).
lock:
	@scripts/lock.sh
