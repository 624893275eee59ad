# One image with both controllers: flotilla-manager (host) and flotilla-agent (members).
#   docker build -t ghcr.io/flotilla/flotilla:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p flotilla-manager -p flotilla-agent \
 && cp target/release/flotilla-manager target/release/flotilla-agent /usr/local/bin/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/flotilla-manager /usr/local/bin/flotilla-agent /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/flotilla-manager"]
