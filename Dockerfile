# One image for every Switchboard service; the command picks the service:
#   docker run IMAGE switchboard run router          (or external, inbound, rest, smpp --connection NAME)
#   docker run IMAGE                                  (everything: switchboard run all)
# Settings come from the environment (README, "Operating it"); mount your channels file at
# /etc/switchboard/channels.yaml (the example file is there by default).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SWITCHBOARD_CHANNELS=/etc/switchboard/channels.yaml

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY services ./services
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchboard

COPY compose/channels.example.yaml /etc/switchboard/channels.yaml

USER switchboard
EXPOSE 8080
CMD ["switchboard", "run", "all"]
