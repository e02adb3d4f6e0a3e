// How many readable bytes the zero-copy parse entry points need after the
// end of a message: simdjson's SIMDJSON_PADDING (64 in simdjson 3.0.1,
// checked by a static_assert where simdjson is included). windlass's loop
// keeps Loop::kReadBufferPadding = 32 bytes after its receive buffer, which
// is not enough: until it is raised to kJsonPadding, the WebSocket layer's
// messages go through the copying entry points.
#pragma once

#include <cstddef>

namespace windlass::channels {

inline constexpr size_t kJsonPadding = 64;

}  // namespace windlass::channels
