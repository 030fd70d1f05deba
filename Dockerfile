# The Airflow image used by docker-compose.yaml: the official apache/airflow image plus this provider.
#
#   docker compose build            (or: docker build -t airflow-preservica:3.3.2 .)
#
# AIRFLOW_VERSION pins both the base image and the apache-airflow requirement of the pip install below,
# so installing the provider can never up- or downgrade Airflow; the official constraints file of that
# release pins every other shared dependency. docker-compose.yaml passes the same AIRFLOW_VERSION.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
ARG PYTHON_VERSION
ARG AIRFLOW_CONSTRAINTS_URL=https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-${PYTHON_VERSION}.txt

# Only what the two wheels are built from (see .dockerignore): no tests, no virtualenv, no local state.
COPY --chown=airflow:0 pyproject.toml README.md CHANGELOG.md /opt/airflow/preservica-provider/
COPY --chown=airflow:0 airflow_provider_preservica /opt/airflow/preservica-provider/airflow_provider_preservica
COPY --chown=airflow:0 sandbox /opt/airflow/preservica-sandbox

# The sandbox distribution (for the sandbox service) brings python-multipart, which Airflow does not ship.
RUN pip install --no-cache-dir --constraint "${AIRFLOW_CONSTRAINTS_URL}" \
        "apache-airflow==${AIRFLOW_VERSION}" \
        /opt/airflow/preservica-sandbox \
        /opt/airflow/preservica-provider \
    && python -c "from importlib.metadata import entry_points as e; \
assert 'airflow_provider_preservica' in str(e(group='apache_airflow_provider')), 'provider entry point missing'" \
    && mkdir -p /opt/airflow/preservica-data/landing /opt/airflow/preservica-data/reports /opt/airflow/sandbox-data

WORKDIR /opt/airflow
