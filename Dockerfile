# Herald in a container: `docker build -t herald .` then
# `docker run -p 8071:8071 -v herald-data:/data herald`.
# The first start prints the generated admin token in the container's log
# (`docker logs <container>`); set HERALD_ADMIN_TOKEN to choose it instead.

FROM rust:1.95-slim-bookworm AS build
# The system OpenSSL backs TLS for outbound deliveries and PostgreSQL connections.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p herald-cli \
 && install -m 0755 target/release/herald /usr/local/bin/herald

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin herald \
 && mkdir -p /data && chown herald:herald /data
COPY --from=build /usr/local/bin/herald /usr/local/bin/herald
USER herald
WORKDIR /data
VOLUME ["/data"]
ENV HERALD_LISTEN=0.0.0.0:8071 \
    HERALD_DATABASE_URL=sqlite:///data/herald.db
EXPOSE 8071
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["herald", "healthcheck", "--url", "http://127.0.0.1:8071"]
ENTRYPOINT ["herald"]
CMD ["serve"]
