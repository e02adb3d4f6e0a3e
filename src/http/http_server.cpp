#include "http/http_server.hpp"

#include <charconv>
#include <ctime>
#include <exception>
#include <mutex>

#include "log.hpp"
#include "proto/http1_parser.hpp"
#include "proto/ws_handshake.hpp"
#include "windlass/component.hpp"

namespace windlass::detail {

using proto::iequals;

size_t refusal_slot(int status) noexcept {
  for (size_t i = 0; i < std::size(kRefusalStatuses); ++i) {
    if (kRefusalStatuses[i] == status) return i;
  }
  return kRefusalSlots - 1;
}

// ------------------------------------------------------------ responses

namespace {

// RFC 9110 §6.6.1: an origin server with a clock sends Date.
void append_date(std::string& out) {
  char buf[64];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  size_t n = std::strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  out.append(buf, n);
}

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

std::chrono::microseconds since(Loop::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Loop::Clock::now() - t);
}

}  // namespace

std::string response_head(int status, size_t content_length, bool close, std::string_view extra_headers) {
  std::string out;
  out.reserve(160 + extra_headers.size());
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\n";
  append_date(out);
  out += extra_headers;
  out += "Content-Length: ";
  out += std::to_string(content_length);
  out += "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string tls_port_plain_text_answer() {
  const std::string body = "this port speaks TLS: use https:// or wss://\n";
  return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

// ------------------------------------------------------------ async answers

// One asynchronous answer on its way. `session` is touched only on the
// loop thread (set to null when the session goes away); `answered` by any.
struct PendingResponse {
  Loop* loop = nullptr;
  std::shared_ptr<LoopGate> gate;  // for answers from other threads
  HttpSession* session = nullptr;
  std::atomic<bool> answered{false};
};

// ------------------------------------------------------------ HttpSession

class HttpSession final : public SocketHandler, public UpgradeSession {
 public:
  HttpSession(HttpServer& server, Socket& socket)
      : server_(server),
        socket_(&socket),
        parser_(server.options().max_head_size, server.options().max_headers),
        started_(socket.loop().now()),
        deadline_(started_ + server.options().header_timeout) {
    peer_len_ = static_cast<uint8_t>(socket.peer().format(peer_));
  }

  // SocketHandler
  void on_data(Socket& s, uint8_t* data, size_t len) override;
  void on_transport_closed(Socket&, int) override;
  void on_sweep(Socket& s, Loop::Clock::time_point now) override;
  void on_shutdown(Socket& s) override;

  // UpgradeSession
  void refuse_upgrade(int status, std::string_view reason, std::string_view extra_headers) override {
    refuse(*socket_, status, reason, extra_headers);
  }
  std::span<uint8_t> hand_over() override;
  void set_pending(PendingUpgradeLink* link) override { pending_upgrade_ = link; }
  Loop::Clock::time_point started() const override { return started_; }

  // An asynchronous answer arrived (on the loop thread).
  void answer(const std::shared_ptr<PendingResponse>& pending, Response response);

 private:
  // Processes buffered input; returns when more bytes are needed, or the
  // connection changed hands (upgrade), waits for an answer, or is closing.
  void process(uint8_t* data, size_t len, bool from_buffer);
  void refuse(Socket& s, int status, std::string_view reason, std::string_view extra = {});
  Request make_request(std::string_view body) const;
  void resolve_client(Socket& s);
  void handle_upgrade(const Request& request, size_t ws_route, uint8_t* rest, size_t rest_len);
  void answer_plain(const Request& request, const HttpRoute& route);
  // What the response needs of its request, kept while an answer is awaited.
  struct Answering {
    bool close = false;      // Connection: close, or HTTP/1.0
    bool head_only = false;  // HEAD
    std::string_view forwarded_for;
  };
  static Answering answering(const Request& request);
  void write_response(std::string_view method, std::string_view path, const Answering& a, Response& response);
  void keep_rest(uint8_t* data, size_t offset, size_t len, bool from_buffer);
  void finish();

  std::string_view peer() const noexcept { return std::string_view(peer_, peer_len_); }

  HttpServer& server_;
  Socket* socket_;  // null once the transport is gone
  proto::Http1Parser parser_;
  std::string buf_;  // bytes of the current request and after, when they span reads or wait
  size_t body_length_ = 0;
  size_t head_size_ = 0;
  bool in_body_ = false;       // the head is in buf_, waiting for its body
  bool head_valid_ = false;    // head_scratch was filled for this session during this call
  bool in_process_ = false;    // process() is on the stack
  bool handed_over_ = false;   // the WebSocket layer took the socket
  bool retired_ = false;
  std::string client_address_;  // set when a trusted proxy named the client
  // A deferred answer (AsyncHttpHandler): requests after it wait in buf_.
  std::shared_ptr<PendingResponse> pending_response_;
  Loop::Clock::time_point pending_deadline_{};
  Answering pending_answering_;
  PendingUpgradeLink* pending_upgrade_ = nullptr;
  // What a late refusal needs for its log line once the head is gone.
  std::string pending_method_, pending_path_;
  std::span<uint8_t> rest_;  // the bytes after an upgrade request's head
  Loop::Clock::time_point started_;  // first byte of the current request (roughly: this turn)
  Loop::Clock::time_point deadline_;
  char peer_[PeerAddress::kTextSize];
  uint8_t peer_len_ = 0;
};

void HttpSession::on_data(Socket&, uint8_t* data, size_t len) {
  if (pending_upgrade_ != nullptr || pending_response_) {
    // Waiting for an answer: what follows is kept for after it, bounded,
    // since an upgrading client should send nothing before the 101
    // (RFC 6455 §4.1) and a pipelining one no more than a request's worth.
    if (buf_.size() + len > server_.options().max_head_size + server_.options().max_body_size) {
      log_info("http: {}:{}: too many bytes while waiting for an answer; closing", peer(), socket_->peer().port);
      socket_->abort(0);
      return;
    }
    buf_.append(reinterpret_cast<const char*>(data), len);
    if (pending_upgrade_ != nullptr) rest_ = std::span(reinterpret_cast<uint8_t*>(buf_.data()), buf_.size());
    return;
  }
  if (buf_.empty()) {
    process(data, len, false);  // the common case: the whole head in one read, no copy
  } else {
    buf_.append(reinterpret_cast<const char*>(data), len);
    process(reinterpret_cast<uint8_t*>(buf_.data()), buf_.size(), true);
  }
}

void HttpSession::on_transport_closed(Socket&, int) {
  socket_ = nullptr;
  if (pending_upgrade_ != nullptr) {
    PendingUpgradeLink* link = pending_upgrade_;
    pending_upgrade_ = nullptr;
    link->client_left();
  }
  if (pending_response_) pending_response_->session = nullptr;
  pending_response_.reset();
  finish();
}

void HttpSession::on_sweep(Socket& s, Loop::Clock::time_point now) {
  if (pending_upgrade_ != nullptr) {
    pending_upgrade_->sweep(now);
  } else if (pending_response_) {
    if (now >= pending_deadline_) {
      log_info("http: {}:{} {} {}: no answer within {} ms", peer(), s.peer().port, pending_method_, pending_path_,
               server_.options().async_response_timeout.count());
      pending_response_->session = nullptr;
      pending_response_.reset();
      refuse(s, 504, "the handler did not answer in time");
    }
  } else if (now >= deadline_ && !s.closing()) {
    refuse(s, 408, "request head not received in time");
  }
}

void HttpSession::on_shutdown(Socket& s) {
  if (pending_upgrade_ != nullptr) {
    pending_upgrade_->shutdown();
  } else if (!pending_response_) {
    s.close_after_flush();
  }
  // A request being answered keeps its connection until the answer (or the
  // shutdown deadline): it is not cut off half-way.
}

std::span<uint8_t> HttpSession::hand_over() {
  handed_over_ = true;
  pending_upgrade_ = nullptr;
  socket_ = nullptr;
  finish();  // freed at the end of the turn: rest_ stays valid until then
  return rest_;
}

void HttpSession::finish() {
  if (retired_) return;
  retired_ = true;
  server_.retire(this);
}

void HttpSession::refuse(Socket& s, int status, std::string_view reason, std::string_view extra) {
  server_.counters().refused[refusal_slot(status)].add();
  // The head's views are only valid while it is being handled.
  const proto::HttpRequestHead& head = server_.head_scratch();
  std::string_view method = head_valid_ ? head.method : std::string_view(pending_method_);
  std::string_view path = head_valid_ ? head.path : std::string_view(pending_path_);
  log_info("http: {}:{} {} {} -> {} ({})", peer(), s.peer().port, method.empty() ? "-" : method,
           path.empty() ? "-" : path, status, reason);
  AccessEvent e;
  e.kind = AccessEvent::Kind::refused;
  e.remote = peer();
  e.remote_port = s.peer().port;
  e.client = client_address_;
  if (head_valid_) e.forwarded_for = head.header("x-forwarded-for");
  e.method = method;
  e.path = path;
  e.status = status;
  e.reason = reason;
  e.duration = since(started_);
  emit_access(server_.options().on_access, e);
  std::string body(reason);
  body += '\n';
  std::string head_text = response_head(
      status, body.size(), true, std::string("Content-Type: text/plain; charset=utf-8\r\n").append(extra));
  s.write2(head_text.data(), head_text.size(), body.data(), body.size());
  s.close_after_flush();
}

Request HttpSession::make_request(std::string_view body) const {
  const proto::HttpRequestHead& h = server_.head_scratch();
  Request r;
  r.method = h.method;
  r.target = h.target;
  r.path = h.path;
  r.query = h.query;
  r.version_minor = h.version_minor;
  r.headers = std::span<const HeaderField>(h.headers, h.header_count);
  r.body = body;
  r.remote_address = peer();
  r.remote_port = socket_->peer().port;
  r.client_address = client_address_.empty() ? r.remote_address : std::string_view(client_address_);
  return r;
}

// Who is asking: the TCP peer, or the client a trusted proxy names.
void HttpSession::resolve_client(Socket& s) {
  client_address_.clear();
  const IpSet* trusted = server_.options().trusted_proxies;
  if (trusted == nullptr || !s.peer().known()) return;
  IpAddress peer_ip;
  peer_ip.bytes = s.peer().ip;
  if (!trusted->contains(peer_ip)) return;
  const proto::HttpRequestHead& head = server_.head_scratch();
  // Kept in a variable: client.unparsed may point into it.
  std::string forwarded_for = proto::join_header_lines(head, "x-forwarded-for");
  ClientIp client = resolve_client_ip(peer_ip, forwarded_for, head.header("x-real-ip"), *trusted);
  if (client.source != ClientIpSource::peer) client_address_ = to_string(client.address);
  if (!client.unparsed.empty()) {
    log_debug("http: {}: X-Forwarded-For entry \"{}\" is not an address; client taken as {}", peer(),
              client.unparsed, client_address_.empty() ? peer() : std::string_view(client_address_));
  }
}

void HttpSession::keep_rest(uint8_t* data, size_t offset, size_t len, bool from_buffer) {
  if (from_buffer) {
    buf_.erase(0, offset);
  } else if (offset < len) {
    buf_.assign(reinterpret_cast<const char*>(data) + offset, len - offset);
  } else {
    buf_.clear();
  }
}

void HttpSession::process(uint8_t* data, size_t len, bool from_buffer) {
  in_process_ = true;
  head_valid_ = false;
  size_t offset = 0;  // start of the current request within data
  proto::HttpRequestHead& head = server_.head_scratch();
  while (socket_ != nullptr && !socket_->closing()) {
    std::string_view input(reinterpret_cast<const char*>(data) + offset, len - offset);
    const bool resumed = in_body_;  // its head was checked when it arrived
    if (!resumed) {
      if (offset == len) break;
      proto::ParseStatus st = parser_.parse(input, head);
      if (st == proto::ParseStatus::error) {
        proto::HttpError e = parser_.error();
        refuse(*socket_, proto::http_status_for(e), proto::describe(e));
        break;
      }
      if (st == proto::ParseStatus::need_more) break;
      server_.counters().requests.add();
      head_valid_ = true;
      head_size_ = parser_.head_size();
      resolve_client(*socket_);
    } else {
      // The head waited in buf_ for its body: parse it again, so its views
      // point into buf_ as it is now (the scratch head may have served
      // other sessions since).
      if (len - offset < head_size_ + body_length_) break;
      parser_.reset();
      parser_.parse(input, head);
      head_valid_ = true;
    }

    const Request probe = make_request({});
    // Filters: every request, before routing (the IP blocklist).
    bool refused = false;
    for (size_t i = 0; i < server_.routes().filters.size() && !resumed; ++i) {
      if (auto r = server_.routes().filters[i]->check(probe)) {
        refuse(*socket_, r->status, r->reason, headers_text(r->headers));
        refused = true;
        break;
      }
    }
    if (refused) break;

    if (!resumed && proto::wants_websocket(head)) {
      Request request = probe;
      const size_t* ws_route = server_.routes().ws.find(head.path, request.params);
      if (ws_route == nullptr) {
        refuse(*socket_, 404, "no WebSocket endpoint at this path");
        break;
      }
      if (socket_->server().process_connection_count() > server_.options().max_connections) {
        refuse(*socket_, 503, "connection limit reached", "Retry-After: 5\r\n");
        break;
      }
      if (!head.header("content-length").empty() || !head.header("transfer-encoding").empty()) {
        refuse(*socket_, 400, "an upgrade request has no body");
        break;
      }
      const size_t end = offset + head_size_;
      handle_upgrade(request, *ws_route, data + end, len - end);
      if (handed_over_ || pending_upgrade_ == nullptr) {
        in_process_ = false;
        return;  // upgraded, or refused (closing)
      }
      // Deferred: keep what followed the head for after the answer.
      pending_method_ = head.method;
      pending_path_ = head.path;
      head_valid_ = false;
      keep_rest(data, end, len, from_buffer);
      rest_ = std::span(reinterpret_cast<uint8_t*>(buf_.data()), buf_.size());
      in_process_ = false;
      return;
    }

    if (!resumed) {
      // RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is a 400.
      size_t hosts = 0;
      for (size_t i = 0; i < head.header_count; ++i) hosts += iequals(head.headers[i].name, "host");
      if (head.version_minor >= 1 && hosts != 1) {
        refuse(*socket_, 400, "missing or repeated Host header");
        break;
      }
    }

    RouteParams params;
    const HttpRoute* route = server_.routes().http.find(head.path, params);
    if (route == nullptr) {
      RouteParams ignored;
      if (server_.routes().ws.find(head.path, ignored) != nullptr) {
        if (head.method != "GET") {
          refuse(*socket_, 405, "WebSocket endpoint: GET only", "Allow: GET\r\n");
        } else {
          refuse(*socket_, 426, "this is a WebSocket endpoint", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        }
      } else {
        refuse(*socket_, 404, "not found");
      }
      break;
    }
    if (!resumed) {
      // Bodies: Content-Length only (RFC 9112 §6). Transfer codings are not
      // implemented (501, §6.1); both together is a smuggling attempt (400).
      bool has_te = false;
      head.header("transfer-encoding", &has_te);
      bool has_cl = false;
      std::string_view cl = head.header("content-length", &has_cl);
      if (has_te && has_cl) {
        refuse(*socket_, 400, "both Content-Length and Transfer-Encoding");
        break;
      }
      if (has_te) {
        refuse(*socket_, 501, "Transfer-Encoding is not supported");
        break;
      }
      body_length_ = 0;
      if (has_cl) {
        auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), body_length_);
        if (ec != std::errc() || p != cl.data() + cl.size()) {
          refuse(*socket_, 400, "invalid Content-Length");
          break;
        }
        if (body_length_ > server_.options().max_body_size) {
          refuse(*socket_, 413, "request body too large");
          break;
        }
      }
      if (len - offset < head_size_ + body_length_) {
        // The body is still on its way: wait for it with the head in buf_.
        in_body_ = true;
        head_valid_ = false;
        break;
      }
    }
    in_body_ = false;
    const size_t body_at = offset + head_size_;
    Request request = make_request(std::string_view(reinterpret_cast<const char*>(data) + body_at, body_length_));
    request.params = params;
    offset = body_at + body_length_;
    parser_.reset();
    answer_plain(request, *route);
    head_valid_ = false;
    started_ = socket_ != nullptr ? socket_->loop().now() : started_;
    deadline_ = started_ + server_.options().header_timeout;
    if (pending_response_) {
      // An asynchronous answer is awaited: what follows waits in buf_.
      keep_rest(data, offset, len, from_buffer);
      in_process_ = false;
      return;
    }
  }
  in_process_ = false;
  // Keep what is not consumed (part of a head or body) for the next read.
  if (socket_ == nullptr || socket_->closing()) return;
  keep_rest(data, offset, len, from_buffer);
}

void HttpSession::handle_upgrade(const Request& request, size_t ws_route, uint8_t* rest, size_t rest_len) {
  rest_ = std::span(rest, rest_len);
  server_.endpoint(ws_route)->upgrade(*socket_, server_.head_scratch(), request, *this);
}

HttpSession::Answering HttpSession::answering(const Request& request) {
  // HTTP/1.1 keeps the connection unless either side says close (RFC 9112 §9.3).
  auto conn_header = request.header("connection");
  Answering a;
  a.close = request.version_minor == 0 || (conn_header && proto::header_has_token(*conn_header, "close"));
  a.head_only = request.method == "HEAD";
  a.forwarded_for = request.header("x-forwarded-for").value_or("");
  return a;
}

void HttpSession::answer_plain(const Request& request, const HttpRoute& route) {
  Response response;
  if (route.async_handler) {
    auto pending = std::make_shared<PendingResponse>();
    pending->loop = &server_.loop();
    pending->gate = server_.gate();
    pending->session = this;
    pending_response_ = pending;
    // What the answer needs after the call, when the request's views are gone.
    pending_method_ = request.method;
    pending_path_ = request.path;
    pending_answering_ = answering(request);
    pending_answering_.forwarded_for = {};
    pending_deadline_ = server_.loop().now() + server_.options().async_response_timeout;
    try {
      route.async_handler(request, HttpResponder(pending));
    } catch (...) {
      log_error("http: {} {} {}: handler threw: {}", request.remote_address, request.method, request.path,
                describe_exception(std::current_exception()));
      if (!pending->answered.exchange(true)) {
        pending->session = nullptr;
        pending_response_.reset();
        response = Response::text(500, "internal server error\n");
        write_response(request.method, request.path, answering(request), response);
      }
    }
    return;
  }
  try {
    route.handler(request, response);
  } catch (...) {
    log_error("http: {} {} {}: handler threw: {}", request.remote_address, request.method, request.path,
              describe_exception(std::current_exception()));
    response = Response::text(500, "internal server error\n");
  }
  write_response(request.method, request.path, answering(request), response);
}

void HttpSession::write_response(std::string_view method, std::string_view path, const Answering& a,
                                 Response& response) {
  if (socket_ == nullptr) return;
  std::string head = response_head(response.status, response.body.size(), a.close, headers_text(response.headers));
  AccessEvent e;
  e.kind = AccessEvent::Kind::http;
  e.remote = peer();
  e.remote_port = socket_->peer().port;
  e.client = client_address_;
  e.forwarded_for = a.forwarded_for;
  e.method = method;
  e.path = path;
  e.status = response.status;
  e.duration = since(started_);
  e.bytes_out = response.body.size();
  emit_access(server_.options().on_access, e);
  socket_->write2(head.data(), head.size(), response.body.data(), a.head_only ? 0 : response.body.size());
  if (a.close) socket_->close_after_flush();
}

void HttpSession::answer(const std::shared_ptr<PendingResponse>& pending, Response response) {
  if (pending_response_ != pending || socket_ == nullptr) return;
  pending_response_.reset();
  write_response(pending_method_, pending_path_, pending_answering_, response);
  started_ = server_.loop().now();
  deadline_ = started_ + server_.options().header_timeout;
  if (in_process_ || socket_ == nullptr || socket_->closing()) return;
  // Requests that arrived meanwhile, in order.
  if (!buf_.empty()) process(reinterpret_cast<uint8_t*>(buf_.data()), buf_.size(), true);
}

}  // namespace windlass::detail

namespace windlass {

bool HttpResponder::send(Response response) const {
  if (!p_ || p_->answered.exchange(true)) return false;
  auto deliver = [p = p_, r = std::move(response)]() mutable {
    if (p->session != nullptr) p->session->answer(p, std::move(r));
  };
  if (p_->loop->in_loop_thread()) {
    deliver();
    return true;
  }
  return p_->gate->post(std::move(deliver));  // false: the App is gone
}

}  // namespace windlass

namespace windlass::detail {

// ------------------------------------------------------------ HttpServer

HttpServer::HttpServer(HttpOptions options, const Routes& routes, Loop& loop)
    : options_(options), routes_(routes), loop_(loop), sessions_(sizeof(HttpSession), alignof(HttpSession), 64) {
  loop_.add_before_wait([this] { free_retired(); });
}

HttpServer::~HttpServer() {
  gate_->close();
  free_retired();
}

SocketHandler* HttpServer::make_session(Socket& socket) {
  return new (sessions_.allocate()) HttpSession(*this, socket);
}

void HttpServer::retire(HttpSession* session) {
  retired_.push_back(session);
}

void HttpServer::free_retired() {
  for (HttpSession* s : retired_) {
    s->~HttpSession();
    sessions_.free(s);
  }
  retired_.clear();
}

}  // namespace windlass::detail
