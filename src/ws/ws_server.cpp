#include "ws/ws_server.hpp"

#include <algorithm>

#include "log.hpp"
#include "proto/http1_parser.hpp"
#include "proto/ws_handshake.hpp"
#include "ws/local_broker.hpp"
#include "ws/ws_connection.hpp"

namespace windlass::detail {

namespace {
std::atomic<uint64_t> g_connection_counter{1};

std::string headers_text(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string extra;
  for (auto& [name, value] : headers) {
    extra += name;
    extra += ": ";
    extra += value;
    extra += "\r\n";
  }
  return extra;
}

// The tokens of a comma-separated header list, trimmed.
std::vector<std::string_view> list_items(std::string_view list) {
  std::vector<std::string_view> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}
}  // namespace

void WsServer::count_close(CloseCause cause, uint16_t code) noexcept {
  counters_.closes_by_cause[static_cast<size_t>(cause)].add();
  size_t slot = kCloseCodeSlots - 1;
  for (size_t i = 0; i < std::size(kCountedCloseCodes); ++i) {
    if (kCountedCloseCodes[i] == code) slot = i;
  }
  counters_.close_codes[slot].add();
}

std::string warm_up_handshake() {
  return proto::compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
}

proto::DeflatePolicy deflate_policy(const CompressionOptions& c) {
  proto::DeflatePolicy p;
  p.enabled = c.mode != CompressionOptions::Mode::off;
  p.server_no_context_takeover = c.mode == CompressionOptions::Mode::shared;
  p.client_no_context_takeover = c.client_no_context_takeover;
  p.server_max_window_bits = c.server_max_window_bits;
  p.client_max_window_bits = c.client_max_window_bits;
  p.min_compress_size = c.min_size;
  p.level = c.level;
  p.mem_level = c.mem_level;
  return p;
}

// ------------------------------------------------------------ the handshake

// What an accepted handshake needs to be completed, now or later.
struct AcceptPlan {
  std::string accept_key;
  std::string offered;  // Sec-WebSocket-Protocol, every line
  proto::DeflateNegotiation deflate;
  // For the access log's 101 line.
  std::string method, path, client, forwarded_for;
};

// A deferred handshake: shared by the PendingUpgrade handles (any thread)
// and the loop (which alone touches everything but `answered`).
struct PendingHandshake final : PendingUpgradeLink {
  Loop* loop = nullptr;
  std::shared_ptr<LoopGate> gate;  // for answers from other threads
  WsEndpoint* endpoint = nullptr;
  WsConnection* conn = nullptr;
  UpgradeSession* session = nullptr;  // null once the client left
  Socket* socket = nullptr;
  AcceptPlan plan;
  Loop::Clock::time_point started{};
  Loop::Clock::time_point deadline{};
  std::atomic<bool> answered{false};
  bool done = false;

  void client_left() override;
  void sweep(Loop::Clock::time_point now) override;
  void shutdown() override;

  void refuse(int status, std::string_view reason, std::string_view extra);
  void fail(int status);
  void accept(std::string subprotocol, bool chosen, std::function<void(Connection&)> prepare);
  void resume(const std::shared_ptr<PendingHandshake>& self, const Request& request,
              const std::function<void(Upgrade&)>& hook);
};

class Handshake {
 public:
  enum class Answer : uint8_t { none, accept, refuse, defer };

  Handshake(WsEndpoint& e, Socket& s, WsConnection& c, const Request& r, UpgradeSession& sess, AcceptPlan& p)
      : endpoint(e), socket(s), conn(c), request(r), session(sess), plan(p) {}

  bool take_answer(Answer a, const char* what) {
    if (answer != Answer::none) {
      log_warn("ws: {}: on_upgrade answered twice ({} after an earlier answer): the first answer stands",
               endpoint.route().pattern, what);
      return false;
    }
    answer = a;
    return true;
  }

  WsEndpoint& endpoint;
  Socket& socket;
  WsConnection& conn;
  const Request& request;
  UpgradeSession& session;
  AcceptPlan& plan;
  Answer answer = Answer::none;
  std::string subprotocol;
  bool subprotocol_chosen = false;
  Refusal refusal;
  std::shared_ptr<PendingHandshake> pending;
};

namespace {

// Writes the 101, logs it, and gives the connection its socket. Returns
// false (having refused through `session`) when the chosen subprotocol
// was not offered.
bool complete_accept(WsEndpoint& endpoint, Socket& socket, WsConnection& conn, UpgradeSession& session,
                     AcceptPlan& plan, std::string_view chosen, bool was_chosen,
                     std::function<void(Connection&)>* prepare) {
  const WsRoute& route = endpoint.route();
  uint8_t index = WsConnection::kNoSubprotocol;
  std::string_view name;
  if (was_chosen) {
    if (!chosen.empty()) {
      auto offered = list_items(plan.offered);
      if (std::find(offered.begin(), offered.end(), chosen) == offered.end()) {
        log_error("ws: {}: on_upgrade chose subprotocol \"{}\", which the client did not offer (RFC 6455 §4.2.2)",
                  route.pattern, chosen);
        session.refuse_upgrade(500, "the server chose a subprotocol the client did not offer", {});
        return false;
      }
      name = chosen;
    }
  } else {
    name = proto::select_subprotocol(plan.offered, route.subprotocols);
  }
  if (!name.empty()) {
    index = WsConnection::kOwnSubprotocol;
    for (size_t i = 0; i < route.subprotocols.size() && i < WsConnection::kOwnSubprotocol; ++i) {
      if (route.subprotocols[i] == name) index = static_cast<uint8_t>(i);
    }
  }
  std::string& response = endpoint.server().response_scratch();
  proto::build_accept_response(response, plan.accept_key, name, plan.deflate.accepted() ? plan.deflate.response : "");
  socket.write(response.data(), response.size());
  if (const auto* hook = endpoint.server().access_hook(); hook != nullptr && *hook) {
    char peer[PeerAddress::kTextSize];
    const size_t peer_len = socket.peer().format(peer);
    AccessEvent e;
    e.kind = AccessEvent::Kind::upgrade;
    e.connection_id = conn.id();
    e.remote = std::string_view(peer, peer_len);
    e.remote_port = socket.peer().port;
    if (plan.client != e.remote) e.client = plan.client;
    e.forwarded_for = plan.forwarded_for;
    e.method = plan.method;
    e.path = plan.path;
    e.status = 101;
    e.duration = std::chrono::duration_cast<std::chrono::microseconds>(Loop::Clock::now() - session.started());
    (*hook)(e);
  }
  session.set_pending(nullptr);
  std::span<uint8_t> rest = session.hand_over();
  conn.open(index, name, plan.deflate.accepted() ? &plan.deflate.params : nullptr, prepare, rest);
  return true;
}

}  // namespace

// ------------------------------------------------------------ PendingHandshake

void PendingHandshake::refuse(int status, std::string_view reason, std::string_view extra) {
  if (session == nullptr) return fail(0);  // nobody to tell: the client left first
  session->set_pending(nullptr);
  session->refuse_upgrade(status, reason, extra);
  fail(status);
}

void PendingHandshake::fail(int status) {
  if (done) return;
  done = true;
  WsConnection* c = conn;
  conn = nullptr;
  c->upgrade_failed(status);
  endpoint->server().release(this);  // may free this: last
}

void PendingHandshake::accept(std::string subprotocol, bool chosen, std::function<void(Connection&)> prepare) {
  if (done) return;
  if (session == nullptr) return fail(0);  // the client left while the answer was on its way
  UpgradeSession& s = *session;
  WsConnection& c = *conn;
  done = true;
  if (!complete_accept(*endpoint, *socket, c, s, plan, subprotocol, chosen, &prepare)) {
    done = false;
    fail(500);
    return;
  }
  endpoint->server().release(this);
}

void PendingHandshake::resume(const std::shared_ptr<PendingHandshake>& self, const Request& request,
                              const std::function<void(Upgrade&)>& hook) {
  if (done) return;
  if (session == nullptr) return fail(0);  // the client left while the answer was on its way
  // Answerable again during the hook: a hook that defers may answer at
  // once, as any hook may. The hook runs on this thread, so neither the
  // sweep nor the client leaving can claim the answer meanwhile.
  answered.store(false);
  Handshake h(*endpoint, *socket, *conn, request, *session, plan);
  h.pending = self;
  endpoint->run_hook(h, "the resumed upgrade hook", hook);
  switch (h.answer) {
    case Handshake::Answer::defer:
      return;  // same link, same deadline
    case Handshake::Answer::accept:
      answered.store(true);
      return accept(std::move(h.subprotocol), h.subprotocol_chosen, {});
    case Handshake::Answer::none:
      log_error("ws: {}: the resumed upgrade hook returned without accepting, refusing or deferring",
                endpoint->route().pattern);
      h.refusal = Refusal{500, "the upgrade was not answered", {}};
      [[fallthrough]];
    case Handshake::Answer::refuse:
      answered.store(true);
      return refuse(h.refusal.status, h.refusal.reason, headers_text(h.refusal.headers));
  }
}

void PendingHandshake::client_left() {
  session = nullptr;
  socket = nullptr;
  // An answer already claimed finds the session gone when it runs.
  if (!answered.exchange(true)) fail(0);
}

void PendingHandshake::sweep(Loop::Clock::time_point now) {
  if (now < deadline || answered.exchange(true)) return;
  const WsOptions& o = endpoint->route().options;
  log_warn("ws: {} {}: upgrade not answered within {} ms; refusing with {}", plan.client, plan.path,
           o.upgrade_timeout.count(), o.upgrade_timeout_status);
  refuse(o.upgrade_timeout_status, "the upgrade was not answered in time", {});
}

void PendingHandshake::shutdown() {
  if (answered.exchange(true)) return;
  refuse(503, "server shutting down", "Retry-After: 5\r\n");
}

// ------------------------------------------------------------ WsEndpoint

namespace {
// Where a connection's parts sit in its slot: the header, the connection,
// then the rate limiter if the route has one, then the component's state.
struct SlotLayout {
  size_t size = 0;
  size_t align = 8;
  size_t rate_offset = 0;   // from the connection; 0: none
  size_t state_offset = 0;  // from the connection; 0: none
};

SlotLayout slot_layout(const WsRoute& route) {
  // The header keeps the connection aligned for anything after it.
  static_assert(kSlotHeaderSize % alignof(WsConnection) == 0);
  SlotLayout l;
  l.align = std::max<size_t>(alignof(WsConnection), route.state.empty() ? 1 : route.state.align);
  size_t at = kSlotHeaderSize + sizeof(WsConnection);
  if (route.rate.enabled()) {
    at = (at + alignof(RateLimiter) - 1) / alignof(RateLimiter) * alignof(RateLimiter);
    l.rate_offset = at - kSlotHeaderSize;
    at += sizeof(RateLimiter);
  }
  if (!route.state.empty()) {
    at = (at + route.state.align - 1) / route.state.align * route.state.align;
    l.state_offset = at - kSlotHeaderSize;
    at += route.state.size;
  }
  l.size = at;
  return l;
}
}  // namespace

WsEndpoint::WsEndpoint(WsServer& server, const WsRoute& route)
    : server_(server),
      route_(route),
      decoder_(proto::DecoderOptions{.max_message_size = route.options.max_message_size}),
      rate_offset_(slot_layout(route).rate_offset),
      state_offset_(slot_layout(route).state_offset),
      slots_(slot_layout(route).size, slot_layout(route).align, 256,
             [this](void* p) { new (p) ConnectionSlotHeader(this); }) {}

WsEndpoint::~WsEndpoint() {
  free_retired();
}

void WsEndpoint::retire(WsConnection* conn) {
  retired_.push_back(conn);
}

void WsEndpoint::free_retired() {
  for (WsConnection* c : retired_) {
    if (void* st = c->state()) route_.state.destroy(st);
    ConnectionSlotHeader& h = c->header();
    c->~WsConnection();
    h.id.store(0, std::memory_order_release);
    h.open.store(0, std::memory_order_release);
    slots_.free(&h);
  }
  retired_.clear();
}

void WsEndpoint::run_hook(Handshake& h, const char* what, const std::function<void(Upgrade&)>& hook) {
  Upgrade upgrade(h);
  server_.set_current_upgrade(&h.conn, &h.request);
  try {
    hook(upgrade);
  } catch (...) {
    auto error = std::current_exception();
    log_error("ws: {}: {} threw: {}", route_.pattern, what, describe_exception(error));
    Connection self = h.conn.handle();
    try {
      component().on_error(self, error);
    } catch (...) {
    }
    if (h.answer == Handshake::Answer::none || h.answer == Handshake::Answer::accept) {
      h.answer = Handshake::Answer::refuse;
      h.refusal = Refusal{500, "internal server error", {}};
    }
  }
  server_.set_current_upgrade(nullptr, nullptr);
}

void WsEndpoint::upgrade(Socket& socket, const proto::HttpRequestHead& head, const Request& request,
                         UpgradeSession& session) {
  proto::UpgradeRequest up;
  if (auto err = proto::validate_upgrade(head, up); err != proto::HandshakeError::none) {
    const int status = proto::http_status_for(err);
    std::string_view extra = status == 426   ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                             : status == 405 ? "Allow: GET\r\n"
                                             : "";
    session.refuse_upgrade(status, proto::describe(err), extra);
    return;
  }
  AcceptPlan plan;
  plan.accept_key = proto::compute_accept_key(up.key);
  // RFC 6455 §9.1, §11.3.4: both lists may be split over several lines.
  plan.offered = proto::join_header_lines(head, "sec-websocket-protocol");
  // permessage-deflate when the route allows it and the client offers an
  // acceptable variant; otherwise Sec-WebSocket-Extensions is not answered,
  // which means no extension is in use (RFC 6455 §9.1).
  if (route_.deflate.enabled && !up.extensions.empty()) {
    plan.deflate = proto::negotiate_deflate(proto::join_header_lines(head, "sec-websocket-extensions"), route_.deflate);
  }
  plan.method = request.method;
  plan.path = request.path;
  plan.client = request.client_address;
  plan.forwarded_for = request.header("x-forwarded-for").value_or("");

  // The connection exists from here, not yet open: its id and state are
  // what the hook may use.
  auto* header = static_cast<ConnectionSlotHeader*>(slots_.allocate());
  auto* conn = new (reinterpret_cast<std::byte*>(header) + kSlotHeaderSize) WsConnection(socket, server_.next_id());
  if (void* st = conn->state()) {
    try {
      route_.state.construct(st);
    } catch (...) {
      log_error("ws: {}: constructing the connection's state threw: {}", route_.pattern,
                describe_exception(std::current_exception()));
      conn->~WsConnection();
      header->id.store(0, std::memory_order_release);
      slots_.free(header);
      session.refuse_upgrade(500, "internal server error", {});
      return;
    }
  }

  Handshake h(*this, socket, *conn, request, session, plan);
  run_hook(h, "on_upgrade", [this](Upgrade& hook_upgrade) { component().on_upgrade(hook_upgrade); });

  switch (h.answer) {
    case Handshake::Answer::accept:
      if (!complete_accept(*this, socket, *conn, session, plan, h.subprotocol, h.subprotocol_chosen, nullptr)) {
        conn->upgrade_failed(500);
      }
      return;
    case Handshake::Answer::defer:
      h.pending->session = &session;
      h.pending->socket = &socket;
      h.pending->plan = std::move(plan);
      h.pending->started = session.started();
      h.pending->deadline = server_.loop().now() + route_.options.upgrade_timeout;
      session.set_pending(h.pending.get());
      return;
    case Handshake::Answer::none:
      log_error("ws: {}: on_upgrade returned without accepting, refusing or deferring the handshake", route_.pattern);
      h.refusal = Refusal{500, "the upgrade was not answered", {}};
      [[fallthrough]];
    case Handshake::Answer::refuse:
      session.refuse_upgrade(h.refusal.status, h.refusal.reason, headers_text(h.refusal.headers));
      conn->upgrade_failed(h.refusal.status);
      return;
  }
}

// ------------------------------------------------------------ WsServer

WsServer::WsServer(Loop& loop, LoopResources& resources, TopicTable& topics, WsShared shared)
    : loop_(loop), res_(resources), topics_(topics), shared_(shared) {
  loop_.add_before_wait([this] { free_retired(); });
}

WsServer::~WsServer() {
  gate_->close();
  free_retired();
}

WsEndpoint& WsServer::add_endpoint(const WsRoute& route) {
  endpoints_.push_back(std::make_unique<WsEndpoint>(*this, route));
  return *endpoints_.back();
}

std::vector<UpgradeTarget*> WsServer::endpoints() const {
  std::vector<UpgradeTarget*> out;
  for (auto& e : endpoints_) out.push_back(e.get());
  return out;
}

void WsServer::free_retired() {
  for (auto& e : endpoints_) e->free_retired();
}

uint64_t WsServer::next_id() noexcept {
  const uint64_t counter = g_connection_counter.fetch_add(1, std::memory_order_relaxed);
  return (uint64_t{shared_.node_id} << Connection::kCounterBits) | Connection::counter_of(counter);
}

proto::Deflater& WsServer::shared_deflater(const proto::DeflaterConfig& config) {
  for (auto& d : shared_deflaters_) {
    const auto& c = d->config();
    if (c.window_bits == config.window_bits && c.mem_level == config.mem_level && c.level == config.level) {
      return *d;
    }
  }
  shared_deflaters_.push_back(std::make_unique<proto::Deflater>(config));
  return *shared_deflaters_.back();
}

void WsServer::hold(std::shared_ptr<PendingHandshake> pending) {
  pending_.push_back(std::move(pending));
}

void WsServer::release(PendingHandshake* pending) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) { return p.get() == pending; });
  if (it == pending_.end()) return;
  std::shared_ptr<PendingHandshake> keep = std::move(*it);  // freed after the erase, not during
  pending_.erase(it);
}

}  // namespace windlass::detail

// ------------------------------------------------------------ the public Upgrade

namespace windlass {

using detail::Handshake;

const Request& Upgrade::request() const noexcept {
  return h_.request;
}

Connection Upgrade::connection() const noexcept {
  return h_.conn.handle();
}

std::vector<std::string_view> Upgrade::offered_subprotocols() const {
  return detail::list_items(h_.plan.offered);
}

void Upgrade::accept() {
  h_.take_answer(Handshake::Answer::accept, "accept");
}

void Upgrade::accept_with(std::string_view subprotocol) {
  if (!h_.take_answer(Handshake::Answer::accept, "accept_with")) return;
  h_.subprotocol.assign(subprotocol);
  h_.subprotocol_chosen = true;
}

void Upgrade::refuse(int status, std::string_view reason, std::vector<std::pair<std::string, std::string>> headers) {
  refuse(Refusal{status, std::string(reason), std::move(headers)});
}

void Upgrade::refuse(Refusal refusal) {
  if (!h_.take_answer(Handshake::Answer::refuse, "refuse")) return;
  if (refusal.status < 400 || refusal.status > 599) {
    detail::log_error("ws: {}: on_upgrade refused with status {}, which is not an error status; answering 500",
                      h_.endpoint.route().pattern, refusal.status);
    refusal.status = 500;
  }
  h_.refusal = std::move(refusal);
}

PendingUpgrade Upgrade::defer() {
  if (h_.answer == Handshake::Answer::defer) return PendingUpgrade(h_.pending);
  if (!h_.take_answer(Handshake::Answer::defer, "defer")) return PendingUpgrade();
  // A resumed handshake (PendingUpgrade::resume) already has its link.
  if (h_.pending) return PendingUpgrade(h_.pending);
  auto p = std::make_shared<detail::PendingHandshake>();
  p->loop = &h_.endpoint.server().loop();
  p->gate = h_.endpoint.server().gate();
  p->endpoint = &h_.endpoint;
  p->conn = &h_.conn;
  h_.pending = p;
  h_.endpoint.server().hold(p);
  return PendingUpgrade(p);
}

bool Upgrade::answered() const noexcept {
  return h_.answer != Handshake::Answer::none;
}

namespace {
bool post_answer(const std::shared_ptr<detail::PendingHandshake>& p, std::function<void()> fn) {
  if (!p || p->answered.exchange(true)) return false;
  // Always through the loop's mailbox, even from the loop thread: the
  // answer then never runs inside the hook that deferred it. Under the
  // gate's lock, so the loop cannot go while the task goes in.
  return p->gate->post(std::move(fn));  // false: the App is gone
}
}  // namespace

bool PendingUpgrade::accept(std::function<void(Connection&)> prepare) const {
  return post_answer(p_, [p = p_, prepare = std::move(prepare)]() mutable { p->accept({}, false, std::move(prepare)); });
}

bool PendingUpgrade::accept_with(std::string subprotocol, std::function<void(Connection&)> prepare) const {
  return post_answer(p_, [p = p_, s = std::move(subprotocol), prepare = std::move(prepare)]() mutable {
    p->accept(std::move(s), true, std::move(prepare));
  });
}

bool PendingUpgrade::refuse(int status, std::string reason, std::vector<std::pair<std::string, std::string>> headers) const {
  return refuse(Refusal{status, std::move(reason), std::move(headers)});
}

bool PendingUpgrade::resume(RequestCopy request, std::function<void(Upgrade&)> hook) const {
  // Loop tasks are copyable std::functions; the copy is not: share it.
  auto r = std::make_shared<RequestCopy>(std::move(request));
  return post_answer(p_, [p = p_, r = std::move(r), hook = std::move(hook)] {
    if (p->done) return;
    p->resume(p, r->get(), hook);
  });
}

bool PendingUpgrade::refuse(Refusal refusal) const {
  if (refusal.status < 400 || refusal.status > 599) refusal.status = 500;
  return post_answer(p_, [p = p_, r = std::move(refusal)] {
    if (p->done) return;
    p->refuse(r.status, r.reason, detail::headers_text(r.headers));
  });
}

}  // namespace windlass
