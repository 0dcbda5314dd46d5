# Two images from one context; docker-compose.yml chooses the target and the command.
#   proxy: Debian's nginx (the package tests/test_production_stack.py runs) with deploy/nginx.conf,
#          the static files and its error pages; it buffers every request and response for web.
#   app:   web (gunicorn, deploy/gunicorn.conf.py), worker and beat (Celery), migrate.
# `docker build .` builds app, the last stage.

FROM debian:bookworm-slim AS proxy
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/* \
 && install -d /var/lib/newsletter-proxy
COPY deploy/nginx.conf /etc/nginx/nginx.conf
COPY deploy/errors /srv/newsletter/errors
COPY static /srv/newsletter/static
# The master process starts as root only to open the container's stdout for the access log;
# the workers, which read every request, run as www-data.
EXPOSE 8080
CMD ["nginx", "-p", "/var/lib/newsletter-proxy/", "-c", "/etc/nginx/nginx.conf", "-e", "stderr", "-g", "daemon off; user www-data;"]

FROM python:3.11-slim AS app

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
COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py
COPY web.py worker.py ./

RUN pip install . \
 && for dir in core/translations mailer/translations issues/translations subscribers/translations campaigns/translations; do \
      if [ -d "$dir" ]; then pybabel compile -d "$dir"; fi; done \
 && useradd --system --home /app newsletter && chown -R newsletter /app

USER newsletter
EXPOSE 8000
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "web:app"]
