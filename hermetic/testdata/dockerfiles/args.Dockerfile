ARG REGISTRY=example.test
ARG BASE_TAG=1
FROM ${REGISTRY}/base:${BASE_TAG} AS build
RUN echo build

FROM build AS test
RUN echo test

FROM $REGISTRY/runtime:$TARGETARCH
COPY --from=build /out /out
COPY --from=example.test/tools:2 /bin/tool /bin/tool
COPY --from=0 /out /out2
RUN --mount=type=bind,from=example.test/cache-src:3,target=/src true
RUN --mount=type=bind,from=test,target=/t true
FROM scratch
COPY --from=test / /
