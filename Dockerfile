# pgshard's image, built from source: `docker build -t pgshard .` (or podman). The binary is linked statically
# (pg_query is C, so cgo) and runs alone on an empty base as a non-root user. Offline, `make image` builds the same
# image from a binary built on this machine (deploy/Dockerfile.binary).
ARG GO_VERSION=1.26
FROM docker.io/library/golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
      -ldflags '-s -w -linkmode external -extldflags "-static"' -o /out/pgshard ./cmd/pgshard && \
    mkdir /out/data

FROM scratch
COPY --from=build /out/pgshard /pgshard
COPY --from=build --chown=65532:65532 /out/data /var/lib/pgshard
# The config is a mounted file (PGSHARD_CONFIG names it); a two_phase_log, when a database uses two-phase commit,
# belongs on a volume (e.g. /var/lib/pgshard/2pc.log).
ENV PGSHARD_CONFIG=/etc/pgshard/config.yaml
USER 65532:65532
EXPOSE 6432
HEALTHCHECK --interval=10s --timeout=5s CMD ["/pgshard", "ping"]
ENTRYPOINT ["/pgshard"]
CMD ["serve"]
