#include "bridge/redis_client.hpp"

#include <hiredis/hiredis.h>

#include <charconv>

#include "windlass/log.hpp"

namespace windlass::redis {

namespace {

constexpr int kMaxTries = 5;

// CRC16 XMODEM (polynomial 0x1021), as Redis Cluster hashes keys.
uint16_t crc16(std::string_view s) noexcept {
  uint16_t crc = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint16_t>(c) << 8));
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

std::string key_of(const Endpoint& e) {
  return e.to_string();
}

// "MOVED 3999 127.0.0.1:6381" -> slot and endpoint.
bool parse_redirect(std::string_view error, std::string_view word, uint16_t& slot, Endpoint& to) {
  if (!error.starts_with(word) || error.size() <= word.size() + 1) return false;
  std::string_view rest = error.substr(word.size() + 1);
  const size_t space = rest.find(' ');
  if (space == std::string_view::npos) return false;
  unsigned s = 0;
  if (std::from_chars(rest.data(), rest.data() + space, s).ec != std::errc() || s >= 16384) return false;
  std::string_view addr = rest.substr(space + 1);
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return false;
  unsigned port = 0;
  if (std::from_chars(addr.data() + colon + 1, addr.data() + addr.size(), port).ec != std::errc() || port > 65535) {
    return false;
  }
  slot = static_cast<uint16_t>(s);
  std::string_view host = addr.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  to = Endpoint{std::string(host), static_cast<uint16_t>(port)};
  return true;
}

}  // namespace

uint16_t hash_slot(std::string_view key) noexcept {
  // A {tag}, when non-empty, is what is hashed: keys sharing one land on one node.
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<uint16_t>(crc16(key) & 16383);
}

Client::Client(Loop& loop, ClientOptions options) : loop_(loop), options_(std::move(options)) {}

Client::~Client() {
  *alive_ = false;
  stop();
}

Client::Node& Client::node_for(const Endpoint& e) {
  auto& slot = nodes_[key_of(e)];
  if (!slot) {
    slot = std::make_unique<Node>();
    slot->endpoint = e;
    LinkOptions lo{e,
                   options_.username,
                   options_.password,
                   options_.cluster ? 0 : options_.database,
                   options_.connect_timeout,
                   options_.reply_timeout,
                   options_.max_pending};
    slot->cmd = std::make_unique<Link>(loop_, lo);
    Node* n = slot.get();
    slot->cmd->on_state([this, n](bool up, std::string_view why) {
      if (up && options_.cluster && !slots_known_) refresh_slots();
      if (!up && options_.cluster) refresh_slots();  // a master may have failed over
      (void)n;
      update_state(why);
    });
    if (started_) slot->cmd->start();
  }
  return *slot;
}

Link& Client::sub_link(Node& n) {
  if (!n.sub) {
    LinkOptions lo{n.endpoint,
                   options_.username,
                   options_.password,
                   options_.cluster ? 0 : options_.database,
                   options_.connect_timeout,
                   options_.reply_timeout,
                   options_.max_pending};
    n.sub = std::make_unique<Link>(loop_, lo);
    Node* np = &n;
    n.sub->on_push([this, np](const redisReply& r) { on_push(*np, r); });
    n.sub->on_state([this, np](bool up, std::string_view why) {
      if (up) {
        // A new connection has no subscriptions: ask again for what it should carry.
        np->subscribed.clear();
        if (np == pattern_node_) patterns_on_.clear();
        reconcile();
      } else {
        np->subscribed.clear();
        if (np == pattern_node_) patterns_on_.clear();
      }
      update_state(why);
    });
    if (started_) n.sub->start();
  }
  return *n.sub;
}

void Client::start() {
  if (started_) return;
  started_ = true;
  for (const Endpoint& e : options_.seeds) node_for(e);
  for (auto& [k, n] : nodes_) {
    n->cmd->start();
    if (n->sub) n->sub->start();
  }
  if (options_.cluster) {
    std::weak_ptr<bool> alive = alive_;
    refresh_timer_ = loop_.add_timer(
        options_.slots_refresh,
        [this, alive] {
          if (!alive.expired()) refresh_slots();
        },
        options_.slots_refresh);
  } else if (!nodes_.empty()) {
    // Standalone: every slot is the one node's.
    slots_.fill(nodes_.begin()->second.get());
    slots_known_ = true;
    // The subscriber link is opened now, not with the first subscription:
    // what other nodes publish while it connects would be lost to the
    // first channel's subscribers, who have already been told they are in.
    sub_link(*nodes_.begin()->second);
  }
}

void Client::stop() {
  if (!started_) return;
  started_ = false;
  loop_.cancel_timer(refresh_timer_);
  refresh_timer_ = 0;
  for (auto& [k, n] : nodes_) {
    n->cmd->stop();
    if (n->sub) n->sub->stop();
  }
  up_ = false;
}

std::vector<Endpoint> Client::masters() const {
  std::set<const Node*> seen;
  std::vector<Endpoint> out;
  for (const Node* n : slots_) {
    if (n != nullptr && seen.insert(n).second) out.push_back(n->endpoint);
  }
  return out;
}

Client::Node* Client::owner(std::string_view key) {
  if (!slots_known_) return nullptr;
  if (key.empty()) {
    for (Node* n : slots_) {
      if (n != nullptr) return n;
    }
    return nullptr;
  }
  return slots_[hash_slot(key)];
}

void Client::refresh_slots() {
  if (!options_.cluster || refreshing_) return;
  // Ask any node whose command link is up.
  Node* ask = nullptr;
  for (auto& [k, n] : nodes_) {
    if (n->cmd->up()) {
      ask = n.get();
      break;
    }
  }
  if (ask == nullptr) return;  // asked again when a link comes up
  refreshing_ = true;
  std::weak_ptr<bool> alive = alive_;
  ask->cmd->command({"CLUSTER", "SLOTS"}, [this, alive](const redisReply* r, std::string_view error) {
    if (alive.expired()) return;
    refreshing_ = false;
    if (r == nullptr || !error.empty() || r->type != REDIS_REPLY_ARRAY) return;
    apply_slots(*r);
  });
}

void Client::apply_slots(const redisReply& r) {
  std::array<Node*, 16384> slots{};
  size_t covered = 0;
  for (size_t i = 0; i < r.elements; ++i) {
    const redisReply* range = r.element[i];
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
    const redisReply* master = range->element[2];
    if (master->type != REDIS_REPLY_ARRAY || master->elements < 2) continue;
    const long long from = range->element[0]->integer, to = range->element[1]->integer;
    if (from < 0 || to >= 16384 || from > to) continue;
    std::string host(reply_string(*master->element[0]));
    Node& n = node_for(Endpoint{host, static_cast<uint16_t>(master->element[1]->integer)});
    for (long long s = from; s <= to; ++s) slots[static_cast<size_t>(s)] = &n;
    covered += static_cast<size_t>(to - from + 1);
  }
  if (covered == 0) return;
  const bool changed = !slots_known_ || slots != slots_;
  slots_ = slots;
  slots_known_ = true;
  // Every master's subscriber link, opened before a channel needs it (as in start()).
  for (Node* n : slots_) {
    if (n != nullptr && !n->sub) sub_link(*n);
  }
  if (changed) reconcile();
  update_state({});
}

void Client::reconcile() {
  for (const std::string& c : wanted_) reconcile(c);
  // Channels subscribed somewhere they should not be (unsubscribed, or moved away).
  for (auto& [k, n] : nodes_) {
    std::vector<std::string> drop;
    for (const std::string& c : n->subscribed) {
      if (!wanted_.contains(c) || owner(c) != n.get()) drop.push_back(c);
    }
    for (const std::string& c : drop) {
      n->subscribed.erase(c);
      if (n->sub && n->sub->up()) {
        n->sub->subscription_command(options_.cluster ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", c, {});
      }
    }
  }
  // Patterns on the first node (in a Cluster every PUBLISH reaches every node).
  if (!patterns_.empty()) {
    Node* n = owner({});
    if (n != nullptr) {
      if (pattern_node_ != n) {
        pattern_node_ = n;
        patterns_on_.clear();
      }
      Link& l = sub_link(*n);
      if (l.up()) {
        for (const std::string& p : patterns_) {
          if (patterns_on_.insert(p).second) l.subscription_command("PSUBSCRIBE", p, {});
        }
      }
    }
  }
}

void Client::reconcile(const std::string& channel) {
  Node* n = owner(channel);
  if (n == nullptr || n->subscribed.contains(channel)) return;
  Link& l = sub_link(*n);
  if (!l.up()) return;  // subscribed when the link comes up
  n->subscribed.insert(channel);
  l.subscription_command(options_.cluster ? "SSUBSCRIBE" : "SUBSCRIBE", channel,
                         [this, n, channel](const redisReply* r, std::string_view error) {
                           if (r == nullptr || !error.empty() || reply_is_error(*r)) {
                             n->subscribed.erase(channel);
                             if (r != nullptr && reply_is_error(*r)) {
                               // MOVED during a resharding: the map is refreshed and this tried again.
                               refresh_slots();
                             }
                           }
                         });
}

void Client::on_push(Node& n, const redisReply& r) {
  if (r.type != REDIS_REPLY_ARRAY || r.elements < 3) return;
  const std::string_view kind = reply_string(*r.element[0]);
  if ((kind == "message" || kind == "smessage") && message_) {
    message_(reply_string(*r.element[1]), reply_string(*r.element[2]));
  } else if (kind == "pmessage" && r.elements >= 4 && pmessage_) {
    pmessage_(reply_string(*r.element[1]), reply_string(*r.element[2]), reply_string(*r.element[3]));
  } else if (kind == "sunsubscribe") {
    // Redis ends a shard subscription by itself when the channel's slot
    // moves: find where it went and subscribe there.
    const std::string channel(reply_string(*r.element[1]));
    n.subscribed.erase(channel);
    refresh_slots();
  }
}

void Client::subscribe(const std::string& channel) {
  if (!wanted_.insert(channel).second) return;
  if (slots_known_) reconcile(channel);
}

void Client::unsubscribe(const std::string& channel) {
  if (wanted_.erase(channel) == 0) return;
  for (auto& [k, n] : nodes_) {
    if (n->subscribed.erase(channel) != 0 && n->sub && n->sub->up()) {
      n->sub->subscription_command(options_.cluster ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channel, {});
    }
  }
}

void Client::psubscribe(const std::string& pattern) {
  if (!patterns_.insert(pattern).second) return;
  if (slots_known_) reconcile();
}

void Client::publish(const std::string& channel, std::string_view payload, Link::Callback cb) {
  command(channel, {options_.cluster ? "SPUBLISH" : "PUBLISH", channel, std::string(payload)}, std::move(cb));
}

void Client::command(std::string key, std::vector<std::string> args, Link::Callback cb) {
  send(std::move(key), std::move(args), std::move(cb), 0, nullptr);
}

void Client::send(std::string key, std::vector<std::string> args, Link::Callback cb, int tries, const Endpoint* ask) {
  Node* n = ask != nullptr ? &node_for(*ask) : owner(key);
  if (n == nullptr) {
    if (cb) cb(nullptr, "no node known for the key yet");
    return;
  }
  if (ask != nullptr) n->cmd->command({"ASKING"}, {});
  std::weak_ptr<bool> alive = alive_;
  auto retry = [this, alive, key, args, cb, tries](const redisReply* r, std::string_view error) mutable {
    if (alive.expired()) return;
    if (r != nullptr && reply_is_error(*r) && tries + 1 < kMaxTries) {
      const std::string_view e = reply_string(*r);
      uint16_t slot = 0;
      Endpoint to;
      if (parse_redirect(e, "MOVED", slot, to)) {
        slots_[slot] = &node_for(to);
        refresh_slots();
        return send(std::move(key), std::move(args), std::move(cb), tries + 1, nullptr);
      }
      if (parse_redirect(e, "ASK", slot, to)) return send(std::move(key), std::move(args), std::move(cb), tries + 1, &to);
      if (e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN")) {
        auto again = [this, alive, key, args, cb, tries]() mutable {
          if (!alive.expired()) send(std::move(key), std::move(args), std::move(cb), tries + 1, nullptr);
        };
        loop_.add_timer(std::chrono::milliseconds(100 << tries), std::move(again));
        return;
      }
    }
    if (cb) cb(r, error);
  };
  if (!n->cmd->command(args, std::move(retry))) {
    if (cb) cb(nullptr, "too many commands waiting");
  }
}

void Client::update_state(std::string_view why) {
  bool up = slots_known_ && started_;
  if (up) {
    std::set<Node*> masters;
    for (Node* n : slots_) {
      if (n != nullptr) masters.insert(n);
    }
    for (Node* n : masters) up = up && n->cmd->up();
    if (!wanted_.empty() || !patterns_.empty()) {
      for (Node* n : masters) {
        if (n->sub) up = up && n->sub->up();
      }
    }
  }
  if (up == up_) return;
  up_ = up;
  if (state_) state_(up, why);
}

}  // namespace windlass::redis
