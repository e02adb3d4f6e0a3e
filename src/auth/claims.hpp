// Claims over nlohmann::json, for the two decorators of auth.hpp: the
// public header shows no JSON library.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

#include "windlass/auth.hpp"

namespace windlass {

struct Claims::Impl {
  nlohmann::json object;  // always an object
};

namespace detail {

// Claims over `object`, which must be a JSON object.
Claims make_claims(nlohmann::json object);
// `text` parsed as a JSON object, or nullopt (not JSON, or another type).
std::optional<nlohmann::json> parse_json_object(std::string_view text);

}  // namespace detail
}  // namespace windlass
