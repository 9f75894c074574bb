# One image for every Werkbrug process; each container chooses its own command (gunicorn for the web
# apps, `python -m services.<name>.worker` for the workers, `werkbrug ...` for one-shot admin tasks).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# The dependencies get a layer of their own, keyed only on pyproject.toml and constraints.txt, so that a
# code change does not reinstall numpy, scipy and scikit-learn.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt

COPY shared ./shared
COPY services ./services
COPY admin ./admin
# Not editable: the runtime stage has no /src. Bytecode is compiled now because the containers run with a
# read-only root filesystem and could not write __pycache__ later.
RUN pip install --no-deps -c constraints.txt . \
    && python -m compileall -q /opt/venv/lib


FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WERKBRUG_VAR_DIR=/tmp/werkbrug

# A numeric uid so that Kubernetes can verify runAsNonRoot without resolving names.
RUN groupadd --system --gid 10001 werkbrug \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin werkbrug

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001

EXPOSE 8101 8102 8103 8104 9101 9102 9103 9104
# No ENTRYPOINT: compose and Kubernetes give every container its full command.
CMD ["werkbrug", "--help"]
