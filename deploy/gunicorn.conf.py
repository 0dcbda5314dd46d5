"""Gunicorn settings for the web service: ``gunicorn --config deploy/gunicorn.conf.py web:app``.

Gunicorn sits behind nginx (deploy/nginx.conf), which reads every request whole and takes
every response at once, as gunicorn's "Deploying" page asks; gunicorn never meets a slow
client. Threaded workers (gthread) keep nginx's connections alive between requests and let a
slow request (a large CSV import or export) share its process with quick ones. Any setting
here can be changed without editing the file: GUNICORN_CMD_ARGS="--workers 5 --threads 8".
"""

# Inside the container: nginx reaches gunicorn over the compose network, and nothing else can
# (docker-compose.yml publishes only nginx's port).
bind = "0.0.0.0:8000"

# Three processes of four threads: twelve requests at once, and still twelve if one process
# dies. Each thread holds at most one database connection, within SQLAlchemy's pool of five.
worker_class = "gthread"
workers = 3
threads = 4

# A process whose heartbeat stops for 30 s is replaced. Threads do not stop the heartbeat, so
# this never cuts a long request short; nginx's proxy_read_timeout (60 s) bounds those.
timeout = 30
graceful_timeout = 30
# Idle connections from nginx stay open 5 s; nginx lets go of them after 4 s.
keepalive = 5

# A fresh process every 2000 or so requests, so memory a long run gathers is given back.
max_requests = 2000
max_requests_jitter = 200

# The heartbeat file lives in memory: on a container's overlay disk its updates can block.
worker_tmp_dir = "/dev/shm"  # noqa: S108

# The app alone decides which forwarded headers to believe (NEWSLETTER_TRUSTED_PROXIES, read by
# werkzeug's ProxyFix); gunicorn's own reading of X-Forwarded-Proto from 127.0.0.1 is off.
forwarded_allow_ips = ""

# nginx logs every request with the reader's address; gunicorn logs only its own events.
accesslog = None
errorlog = "-"
loglevel = "info"
proc_name = "newsletter-web"

# No gunicornc control socket: it would be one shared file in $HOME for every gunicorn.
control_socket_disable = True
