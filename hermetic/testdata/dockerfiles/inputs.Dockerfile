# syntax=docker/dockerfile:1.7
FROM example.test/base:1
ARG FILE_VERSION=1.2
ADD https://example.test/files/tool-${FILE_VERSION}.tar.gz /tmp/
ADD --checksum=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 https://example.test/empty /tmp/empty
ADD https://example.test/repo.git#v1.0:sub /src
ADD git@example.test:org/other.git#0123456789abcdef0123456789abcdef01234567 /other
RUN --network=host curl example.test
RUN --network=none true
RUN --security=insecure true
RUN --mount=type=secret,id=tok --mount=type=cache,target=/c --mount=type=ssh true
