# The relayguard binary in a small image, for campaigns on a container
# engine (docs/campaigns.md): each container runs one shard of a campaign.
#
#   docker build --build-arg RELAYGUARD_COMMIT=$(git rev-parse --short HEAD) -t relayguard .
#   docker run --rm relayguard sim --seeds 1000 --shard 0/8 --jobs 2 --json
#
# The commit is passed in because the build context has no .git: it is
# printed beside every failing seed, and merge refuses shards of two commits.
FROM rust:1-bookworm AS build
ARG RELAYGUARD_COMMIT=unknown
ENV RELAYGUARD_COMMIT=${RELAYGUARD_COMMIT}
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin relayguard

FROM debian:bookworm-slim
COPY --from=build /src/target/release/relayguard /usr/local/bin/relayguard
# The corpus, for `replay` and the audit commands; `sim` embeds its own.
COPY --from=build /src/corpus /usr/share/relayguard/corpus
WORKDIR /usr/share/relayguard
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/relayguard"]
CMD ["sim", "--jobs", "2"]
