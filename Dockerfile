# The envyard image used by docker-compose.yml for both the API and the workers.
FROM python:3.11-slim
WORKDIR /opt/envyard
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
RUN pip install --no-cache-dir . && useradd --system --create-home envyard
ENV ENVYARD_DATA_DIR=/var/lib/envyard
EXPOSE 8000
CMD ["envyard", "serve", "--host", "0.0.0.0", "--port", "8000"]
