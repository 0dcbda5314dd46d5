# One image for web, worker and beat; docker-compose.yml chooses the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY core core
COPY mailer mailer
COPY issues issues
COPY subscribers subscribers
COPY campaigns campaigns
COPY migrations migrations
COPY templates templates
COPY static static
COPY samples samples
COPY web.py worker.py ./

RUN pip install . \
 && for dir in core/translations mailer/translations issues/translations subscribers/translations campaigns/translations; do \
      if [ -d "$dir" ]; then pybabel compile -d "$dir"; fi; done \
 && useradd --system --home /app newsletter && chown -R newsletter /app

USER newsletter
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "web:app"]
