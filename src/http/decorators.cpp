// The decorators of include/windlass/decorators.hpp over the pure access
// checks of access_control.hpp. Their refusals carry the same statuses and
// reasons the HTTP layer gave when these checks were its own code.
#include "windlass/decorators.hpp"

#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "http/access_control.hpp"
#include "log.hpp"
#include "proto/http1_parser.hpp"

namespace windlass {

using detail::AccessError;

ComponentDecorator::ComponentDecorator(std::shared_ptr<MessageComponent> inner) : inner_(std::move(inner)) {
  if (!inner_) throw std::invalid_argument("a decorator needs a component to wrap");
}

// ------------------------------------------------------------ OriginCheck

OriginCheck::OriginCheck(std::shared_ptr<MessageComponent> inner, const std::vector<std::string>& allowed_origins,
                         bool allow_missing_origin)
    : ComponentDecorator(std::move(inner)) {
  std::string error;
  auto policy = detail::OriginPolicy::compile(allowed_origins, allow_missing_origin, error);
  if (!policy) throw std::invalid_argument("allowed_origins" + error);
  policy_ = std::make_unique<detail::OriginPolicy>(std::move(*policy));
}

OriginCheck::~OriginCheck() = default;

void OriginCheck::on_upgrade(Upgrade& upgrade) {
  const Request& r = upgrade.request();
  // Several Origin lines are joined with ", ", which check() then refuses
  // as malformed: a browser sends one.
  bool has_origin = false;
  std::string origin;
  for (const HeaderField& h : r.headers) {
    if (!proto::iequals(h.name, "origin")) continue;
    if (has_origin) origin += ", ";
    origin += h.value;
    has_origin = true;
  }
  const AccessError e = detail::access_error_for(
      policy_->check(has_origin ? std::optional<std::string_view>(origin) : std::nullopt));
  if (e != AccessError::none) return upgrade.refuse(detail::http_status_for(e), detail::describe(e));
  inner_->on_upgrade(upgrade);
}

// ------------------------------------------------------------ IpBlackList

IpBlackList::IpBlackList(const std::vector<std::string>& rules) {
  std::string error;
  auto set = detail::IpSet::compile(rules, error);
  if (!set) throw std::invalid_argument("blocklist" + error);
  set_ = std::make_unique<detail::IpSet>(std::move(*set));
}

IpBlackList::~IpBlackList() = default;

std::optional<Refusal> IpBlackList::check(const Request& request) {
  auto address = detail::parse_ip(request.client_address);
  if (!address || !set_->contains(*address)) return std::nullopt;
  return Refusal{detail::http_status_for(AccessError::blocked_address), detail::describe(AccessError::blocked_address), {}};
}

// ------------------------------------------------------------ ConnectionLimit

struct PerIpCounter::Held {
  std::mutex mu;
  std::unordered_map<uint64_t, detail::IpAddress> by_connection;  // connections counted, by id
};

std::shared_ptr<PerIpCounter> PerIpCounter::make(size_t max_per_ip, unsigned ipv6_prefix) {
  if (ipv6_prefix < 1 || ipv6_prefix > 128) {
    throw std::invalid_argument("ipv6_prefix_per_ip " + std::to_string(ipv6_prefix) + " out of range (1-128)");
  }
  return std::make_shared<PerIpCounter>(std::make_unique<detail::ConnectionLimiter>(max_per_ip, ipv6_prefix));
}

PerIpCounter::PerIpCounter(std::unique_ptr<detail::ConnectionLimiter> limiter)
    : limiter_(std::move(limiter)), held_(std::make_unique<Held>()) {}

PerIpCounter::~PerIpCounter() = default;

size_t PerIpCounter::max_per_ip() const noexcept {
  return limiter_->max_per_ip();
}

size_t PerIpCounter::count(std::string_view client_address) const {
  auto a = detail::parse_ip(client_address);
  return a ? limiter_->count(*a) : 0;
}

bool PerIpCounter::acquire(uint64_t connection_id, std::string_view client_address) {
  auto a = detail::parse_ip(client_address);
  if (!a) return true;  // not an IP socket: nothing to count by
  if (!limiter_->try_acquire(*a)) return false;
  std::lock_guard lock(held_->mu);
  held_->by_connection.emplace(connection_id, *a);
  return true;
}

void PerIpCounter::release(uint64_t connection_id) {
  detail::IpAddress a;
  {
    std::lock_guard lock(held_->mu);
    auto it = held_->by_connection.find(connection_id);
    if (it == held_->by_connection.end()) return;
    a = it->second;
    held_->by_connection.erase(it);
  }
  limiter_->release(a);
}

ConnectionLimit::ConnectionLimit(std::shared_ptr<MessageComponent> inner, std::shared_ptr<PerIpCounter> counter)
    : ComponentDecorator(std::move(inner)), counter_(std::move(counter)) {
  if (!counter_) throw std::invalid_argument("ConnectionLimit needs a PerIpCounter");
}

void ConnectionLimit::on_upgrade(Upgrade& upgrade) {
  if (counter_->max_per_ip() != 0 &&
      !counter_->acquire(upgrade.connection().id(), upgrade.request().client_address)) {
    return upgrade.refuse(detail::http_status_for(AccessError::too_many_connections),
                          detail::describe(AccessError::too_many_connections));
  }
  inner_->on_upgrade(upgrade);
}

void ConnectionLimit::on_upgrade_failed(Connection& conn, int status) {
  counter_->release(conn.id());
  inner_->on_upgrade_failed(conn, status);
}

void ConnectionLimit::on_close(Connection& conn, const CloseInfo& info) {
  counter_->release(conn.id());
  inner_->on_close(conn, info);
}

}  // namespace windlass
