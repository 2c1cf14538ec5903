# nexo as a container image: compile a single binary with the official Deno image, run it on a small
# distroless base as a non-root user. Build: `docker build -t nexo .`; run: see examples/docker-compose.yml.
# (Not buildable in nexo's development sandbox, which has no Docker engine and cannot download denort.)

FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock main.ts ./
COPY lib ./lib
# deno task compile: the bundle first (deno task build, dist/; it fetches esbuild from npm), then the binary
# from it: --frozen lockfile, the ACME worker included, permissions baked in.
RUN deno task compile && ./nexo version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/nexo /usr/local/bin/nexo
# Config, certificates, the ACME account and the local CA live here; mount it to keep them.
VOLUME /etc/nexo
# DENO_LOG keeps Deno's HTTP/2 library from printing bare lines among the JSON logs; MALLOC_ARENA_MAX=1 keeps
# glibc from holding freed memory per thread, DENO_USR2_MEMORY_TRIM=1 lets nexo hand freed memory back after
# a burst of traffic (all in lib/v8_flags.ts).
ENV NEXO_CONFIG=/etc/nexo/config.yaml NEXO_LOG_FORMAT=json DENO_LOG=info,h2=error MALLOC_ARENA_MAX=1 DENO_USR2_MEMORY_TRIM=1
# Docker (20.10+) sets net.ipv4.ip_unprivileged_port_start=0 in containers, so the non-root user binds 443/80.
EXPOSE 443 80
USER nonroot
ENTRYPOINT ["/usr/local/bin/nexo"]
CMD ["server"]
