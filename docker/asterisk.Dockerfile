# Asterisk 22 from Debian sid (Debian 12 has no asterisk package), same packages as the embedded stack.
FROM debian:sid-slim
RUN apt-get update && apt-get install -y --no-install-recommends asterisk asterisk-moh-opsound-gsm \
 && rm -rf /var/lib/apt/lists/*
# Our rendered config is mounted at /etc/asterisk/ari-app by the asterisk-config service.
CMD ["sh", "-c", "cp /etc/asterisk/ari-app/*.conf /etc/asterisk/ && exec asterisk -f -n"]
