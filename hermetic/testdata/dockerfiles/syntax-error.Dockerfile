FROM example.test/base:1
RUN true
FROBNICATE now
