#include "auth/claims.hpp"

#include <limits>

namespace windlass {

namespace {
const nlohmann::json* member(const Claims::Impl* impl, std::string_view name) {
  if (impl == nullptr) return nullptr;
  auto it = impl->object.find(name);
  return it == impl->object.end() ? nullptr : &*it;
}

// Compact JSON; bytes that are not UTF-8 (which the parser already
// refused) would be replaced rather than throw.
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

Claims::Claims() = default;
Claims::Claims(std::shared_ptr<const Impl> impl) noexcept : impl_(std::move(impl)) {}

bool Claims::empty() const noexcept {
  return impl_ == nullptr || impl_->object.empty();
}

bool Claims::has(std::string_view name) const {
  return member(impl_.get(), name) != nullptr;
}

std::optional<std::string> Claims::string(std::string_view name) const {
  const nlohmann::json* m = member(impl_.get(), name);
  if (m == nullptr || !m->is_string()) return std::nullopt;
  return m->get<std::string>();
}

std::optional<int64_t> Claims::integer(std::string_view name) const {
  const nlohmann::json* m = member(impl_.get(), name);
  if (m == nullptr) return std::nullopt;
  // nlohmann keeps non-negative integers unsigned (up to 2^64 - 1).
  if (m->is_number_unsigned()) {
    const auto u = m->get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return static_cast<int64_t>(u);
    return std::nullopt;
  }
  if (m->is_number_integer()) return m->get<int64_t>();
  return std::nullopt;
}

std::optional<bool> Claims::boolean(std::string_view name) const {
  const nlohmann::json* m = member(impl_.get(), name);
  if (m == nullptr || !m->is_boolean()) return std::nullopt;
  return m->get<bool>();
}

std::optional<std::string> Claims::json(std::string_view name) const {
  const nlohmann::json* m = member(impl_.get(), name);
  if (m == nullptr) return std::nullopt;
  return dump(*m);
}

std::string Claims::json() const {
  return impl_ == nullptr ? std::string("{}") : dump(impl_->object);
}

std::vector<std::string> Claims::names() const {
  std::vector<std::string> out;
  if (impl_ == nullptr) return out;
  for (auto it = impl_->object.begin(); it != impl_->object.end(); ++it) out.push_back(it.key());
  return out;
}

namespace detail {

Claims make_claims(nlohmann::json object) {
  return Claims(std::make_shared<const Claims::Impl>(Claims::Impl{std::move(object)}));
}

std::optional<nlohmann::json> parse_json_object(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

}  // namespace detail
}  // namespace windlass
