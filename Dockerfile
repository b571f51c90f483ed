# syntax=docker/dockerfile:1
# idauth-exporter: a small, non-root image.
#   docker build -t idauth-exporter .
#   docker run -p 9877:9877 idauth-exporter demo --web.listen-address=0.0.0.0:9877
# With an account: mount config.yaml at /etc/idauth-exporter/config.yaml and the API key
# at /run/secrets/smile_id_api_key.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The revision for --version and idauth_exporter_build_info (the build has no .git).
ARG REVISION=unknown
ENV IDAUTH_REVISION=${REVISION}
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY scenarios ./scenarios
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/idauth-exporter /idauth-exporter

# glibc and libgcc, nothing else: no shell, no package manager. User 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="idauth-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the availability of the government ID authorities behind Smile ID" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/idauth-exporter/idauth-exporter" \
      org.opencontainers.image.documentation="https://github.com/idauth-exporter/idauth-exporter/blob/main/README.md"
COPY --from=build /idauth-exporter /usr/local/bin/idauth-exporter
COPY config.example.yaml /etc/idauth-exporter/config.yaml
# The API key is read from $CREDENTIALS_DIRECTORY/smile_id_api_key: mount it there.
ENV CREDENTIALS_DIRECTORY=/run/secrets
USER 65532:65532
EXPOSE 9877
ENTRYPOINT ["/usr/local/bin/idauth-exporter"]
CMD ["--config.file=/etc/idauth-exporter/config.yaml"]
