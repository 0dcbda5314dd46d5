# Two commands for a newcomer: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PY_SOURCES := core mailer issues subscribers campaigns inbound tests bench web.py worker.py
# Message catalogues, as babel.cfg=translations-folder (see core/i18n.py).
CATALOGUES := core/babel.cfg=core/translations mailer/babel.cfg=mailer/translations \
	issues/babel.cfg=issues/translations subscribers/babel.cfg=subscribers/translations \
	campaigns/babel.cfg=campaigns/translations inbound/babel.cfg=inbound/translations
CATALOGUE_DIRS := core/translations mailer/translations issues/translations subscribers/translations \
	campaigns/translations inbound/translations

.PHONY: demo test lint types pytest translations migration clean bench bench-send i18n

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	$(BIN)/python -m pip install -e '.[dev,demo]' > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	touch $(STAMP)

# Compiled catalogues are build products, made from the .po files each time (it takes a moment).
translations: $(STAMP)
	@for dir in $(CATALOGUE_DIRS); do \
	  if [ -d $$dir ]; then $(BIN)/pybabel compile -d $$dir >$(VENV)/pybabel.log 2>&1 \
	    || { cat $(VENV)/pybabel.log; exit 1; }; fi; done

demo: $(STAMP) translations
	$(BIN)/python -m core.demo $(if $(ONCE),--once,)

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) translations
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP) translations
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The campaign send against smtp-sink and its smtp-source ceiling (issue 10); N=, DB=, WORKERS=.
bench-send: $(STAMP) translations
	$(BIN)/python bench/bench_send.py

# Rewrite migrations/versions/0001_initial.py from the models (until the first release).
migration: $(STAMP)
	$(BIN)/python -m core.migrate

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# Extract each catalogue's strings and merge them into its zh catalogue; then translate the new ones.
i18n: $(STAMP)
	@set -e; for pair in $(CATALOGUES); do \
	  cfg=$${pair%%=*}; dir=$${pair#*=}; [ -f $$cfg ] || continue; \
	  $(BIN)/pybabel extract -F $$cfg -k _l -k lazy_gettext -o $$dir/messages.pot . >/dev/null 2>&1; \
	  if [ -f $$dir/zh/LC_MESSAGES/messages.po ]; then \
	    $(BIN)/pybabel update -N -i $$dir/messages.pot -d $$dir -l zh >/dev/null 2>&1; \
	  else $(BIN)/pybabel init -i $$dir/messages.pot -d $$dir -l zh >/dev/null 2>&1; fi; \
	  echo "$$dir: $$(grep -c '^msgid' $$dir/zh/LC_MESSAGES/messages.po) messages"; done
