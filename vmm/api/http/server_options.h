// The limits and the size of an HttpServer.
#pragma once

#include <cstdint>

namespace vmfork::api {

struct ServerOptions {
  // Larger bodies are refused with 413 as soon as Content-Length says so,
  // before a byte of them is read.
  uint64_t max_body_bytes = 64 * 1024;
  // The request line and the header fields; larger is a 431.
  uint32_t max_header_bytes = 8 * 1024;
  // Threads that run handlers. A handler may block for long (a fork, a
  // snapshot write): this many may block at once before requests queue.
  uint32_t workers = 4;
};

}  // namespace vmfork::api
