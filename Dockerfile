# syntax=docker/dockerfile:1
# Strata in one container: a static binary on distroless, run as non-root.
#   docker build -t strata --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d -p 8430:8430 -v strata-data:/data strata
# See docs/operations.md ("Running in a container").

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so that a code change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
# The dashboard is embedded with go:embed: no build step besides go build.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/strata ./cmd/strata \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/strata /strata
# The volume starts out owned by the user the server runs as.
COPY --from=build --chown=65532:65532 /out/data /data
ENV STRATA_LISTEN_ADDR=0.0.0.0:8430 \
    STRATA_DATA_DIR=/data
USER 65532:65532
VOLUME /data
EXPOSE 8430
# /readyz answers once the write-ahead log is replayed, which can take a
# while after a crash: hence the start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=2m --retries=3 \
  CMD ["/strata", "healthcheck"]
# SIGTERM shuts down gracefully (allow time: docker stop -t 60).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/strata"]
