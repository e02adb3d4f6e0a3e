#include "http/http_server.hpp"

#include <charconv>
#include <ctime>
#include <exception>

#include "log.hpp"
#include "proto/http1_parser.hpp"
#include "proto/ws_handshake.hpp"

namespace windlass::detail {

using proto::iequals;

// ------------------------------------------------------------ Router

void Router::add_ws(std::string path, std::unique_ptr<WsRoute> route) {
  ws_.emplace_back(std::move(path), std::move(route));
}

void Router::add_http(std::string path, HttpHandler handler) {
  bool prefix = path.size() >= 2 && path.ends_with("/*");
  if (prefix) path.pop_back();
  http_.push_back(HttpEntry{std::move(path), prefix, std::move(handler)});
}

WsRoute* Router::find_ws(std::string_view path) const {
  for (auto& [p, route] : ws_) {
    if (p == path) return route.get();
  }
  return nullptr;
}

const HttpHandler* Router::find_http(std::string_view path) const {
  const HttpEntry* best = nullptr;
  for (auto& e : http_) {
    if (!e.prefix && e.path == path) return &e.handler;
    if (e.prefix && path.starts_with(e.path) && (!best || e.path.size() > best->path.size())) best = &e;
  }
  return best ? &best->handler : nullptr;
}

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

std::string response_head(int status, size_t content_length, bool close,
                          std::string_view extra_headers) {
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

}  // namespace

void write_error_response(Socket& socket, int status, std::string_view reason,
                          std::string_view extra_headers) {
  std::string body(reason);
  body += '\n';
  std::string head = response_head(
      status, body.size(), true,
      std::string("Content-Type: text/plain; charset=utf-8\r\n").append(extra_headers));
  socket.write2(head.data(), head.size(), body.data(), body.size());
  socket.close_after_flush();
}

// ------------------------------------------------------------ HttpSession

namespace {

class HttpSession final : public SocketHandler {
 public:
  HttpSession(HttpServer& server, Socket& socket)
      : server_(server),
        parser_(server.options().max_head_size, server.options().max_headers),
        started_(socket.loop().now()),
        deadline_(started_ + server.options().header_timeout) {}

  void on_data(Socket& s, uint8_t* data, size_t len) override;
  void on_transport_closed(Socket&, int) override {}
  void on_sweep(Socket& s, Loop::Clock::time_point now) override {
    if (now >= deadline_ && !s.closing()) refuse(s, 408, "request head not received in time");
  }
  void on_shutdown(Socket& s) override { s.close_after_flush(); }

 private:
  // Processes buffered input; returns when more bytes are needed or the
  // connection changed hands (upgrade) or is closing.
  void process(Socket& s, uint8_t* data, size_t len, bool from_buffer);
  void refuse(Socket& s, int status, std::string_view reason, std::string_view extra = {});
  Request make_request(const Socket& s) const;
  void answer_plain(Socket& s, const HttpHandler& handler, Request request);

  HttpServer& server_;
  proto::Http1Parser parser_;
  proto::HttpRequestHead head_;
  std::string buf_;  // bytes of the current request not yet consumed, when they span reads
  size_t body_length_ = 0;
  bool in_body_ = false;
  bool head_valid_ = false;  // head_ was filled by this dispatch's parse
  std::string client_address_;  // set when a trusted proxy named the client
  Request pending_;  // a plain request waiting for its body
  const HttpHandler* pending_handler_ = nullptr;
  Loop::Clock::time_point started_;  // first byte of the current request (roughly: this turn)
  Loop::Clock::time_point deadline_;
};

std::chrono::microseconds since(Loop::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Loop::Clock::now() - t);
}

void HttpSession::on_data(Socket& s, uint8_t* data, size_t len) {
  if (buf_.empty()) {
    process(s, data, len, false);  // the common case: the whole head in one read, no copy
  } else {
    buf_.append(reinterpret_cast<const char*>(data), len);
    process(s, reinterpret_cast<uint8_t*>(buf_.data()), buf_.size(), true);
  }
}

void HttpSession::refuse(Socket& s, int status, std::string_view reason, std::string_view extra) {
  server_.counters().refused[refusal_slot(status)].add();
  // The head's views are only valid while it is being handled.
  std::string_view method = head_valid_ ? head_.method : "-";
  std::string_view path = head_valid_ ? head_.path : "-";
  log_info("http: {}:{} {} {} -> {} ({})", s.remote_address(), s.remote_port(), method, path, status,
           reason);
  AccessEvent e;
  e.kind = AccessEvent::Kind::refused;
  e.remote = s.remote_address();
  e.remote_port = s.remote_port();
  e.client = client_address_;
  if (head_valid_) e.forwarded_for = head_.header("x-forwarded-for");
  e.method = head_valid_ ? head_.method : std::string_view();
  e.path = head_valid_ ? head_.path : std::string_view();
  e.status = status;
  e.reason = reason;
  e.duration = since(started_);
  emit_access(server_.options().on_access, e);
  write_error_response(s, status, reason, extra);
}

Request HttpSession::make_request(const Socket& s) const {
  Request r;
  r.method = head_.method;
  r.target = head_.target;
  r.path = head_.path;
  r.query = head_.query;
  r.version_minor = head_.version_minor;
  r.headers.reserve(head_.header_count);
  for (size_t i = 0; i < head_.header_count; ++i) {
    r.headers.emplace_back(head_.headers[i].name, head_.headers[i].value);
  }
  r.remote_address = s.remote_address();
  r.remote_port = s.remote_port();
  r.client_address = client_address_.empty() ? r.remote_address : client_address_;
  return r;
}


void HttpSession::process(Socket& s, uint8_t* data, size_t len, bool from_buffer) {
  head_valid_ = false;
  size_t offset = 0;  // start of the current request within data
  while (!s.closing()) {
    std::string_view input(reinterpret_cast<const char*>(data) + offset, len - offset);
    if (!in_body_) {
      if (offset == len) break;
      proto::ParseStatus st = parser_.parse(input, head_);
      if (st == proto::ParseStatus::error) {
        proto::HttpError e = parser_.error();
        refuse(s, proto::http_status_for(e), proto::describe(e));
        return;
      }
      if (st == proto::ParseStatus::need_more) break;
      server_.counters().requests.add();
      head_valid_ = true;
      size_t head_size = parser_.head_size();

      // Who is asking: the TCP peer, or the client a trusted proxy names.
      client_address_.clear();
      std::optional<ClientIp> client;
      const AccessPolicy* policy = server_.options().access;
      if (policy != nullptr) {
        // Kept in a variable: client->unparsed may point into it.
        std::string forwarded_for = proto::join_header_lines(head_, "x-forwarded-for");
        client = policy->client_ip(s.remote_address(), forwarded_for, head_.header("x-real-ip"));
        if (client) {
          client_address_ = to_string(client->address);
          if (!client->unparsed.empty()) {
            log_debug("http: {}: X-Forwarded-For entry \"{}\" is not an address; client taken as {}",
                      s.remote_address(), client->unparsed, client_address_);
          }
          if (auto e = policy->check_address(client->address); e != AccessError::none) {
            return refuse(s, http_status_for(e), describe(e));
          }
        }
      }

      if (proto::wants_websocket(head_)) {
        WsRoute* route = server_.router().find_ws(head_.path);
        if (route == nullptr) return refuse(s, 404, "no WebSocket endpoint at this path");
        if (s.server().process_connection_count() > server_.options().max_connections) {
          return refuse(s, 503, "connection limit reached", "Retry-After: 5\r\n");
        }
        if (!head_.header("content-length").empty() || !head_.header("transfer-encoding").empty()) {
          return refuse(s, 400, "an upgrade request has no body");
        }
        ConnectionSlot slot;
        if (policy != nullptr) {
          bool has_origin = false;
          std::string origin = proto::join_header_lines(head_, "origin", &has_origin);
          if (auto e = policy->check_origin(has_origin ? std::optional<std::string_view>(origin) : std::nullopt);
              e != AccessError::none) {
            return refuse(s, http_status_for(e), describe(e));
          }
          // Last, after every check that can refuse: it counts the connection.
          if (client) {
            if (auto e = policy->acquire_connection(client->address, slot); e != AccessError::none) {
              return refuse(s, http_status_for(e), describe(e));
            }
          }
        }
        // The connection leaves HTTP for good: the WsServer takes the socket
        // and any bytes that followed the head.
        uint8_t* rest = data + offset + head_size;
        size_t rest_len = len - offset - head_size;
        // This session is retired by the upgrade but kept alive until the
        // dispatch returns, so `rest` (which may point into buf_) stays valid.
        auto err = server_.ws().upgrade(s, head_, make_request(s), *route, rest, rest_len, started_,
                                        std::move(slot));
        if (err != proto::HandshakeError::none) {
          int status = proto::http_status_for(err);
          std::string_view extra = status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                   : status == 405 ? "Allow: GET\r\n"
                                                   : "";
          refuse(s, status, proto::describe(err), extra);
        }
        return;
      }

      // RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is a 400.
      size_t hosts = 0;
      for (size_t i = 0; i < head_.header_count; ++i) hosts += iequals(head_.headers[i].name, "host");
      if (head_.version_minor >= 1 && hosts != 1) return refuse(s, 400, "missing or repeated Host header");

      const HttpHandler* handler = server_.router().find_http(head_.path);
      if (handler == nullptr) {
        if (server_.router().find_ws(head_.path) != nullptr) {
          if (head_.method != "GET") {
            return refuse(s, 405, "WebSocket endpoint: GET only", "Allow: GET\r\n");
          }
          return refuse(s, 426, "this is a WebSocket endpoint",
                        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        }
        return refuse(s, 404, "not found");
      }
      // Bodies: Content-Length only (RFC 9112 §6). Transfer codings are not
      // implemented (501, §6.1); both together is a smuggling attempt (400).
      bool has_te = false;
      head_.header("transfer-encoding", &has_te);
      bool has_cl = false;
      std::string_view cl = head_.header("content-length", &has_cl);
      if (has_te && has_cl) return refuse(s, 400, "both Content-Length and Transfer-Encoding");
      if (has_te) return refuse(s, 501, "Transfer-Encoding is not supported");
      body_length_ = 0;
      if (has_cl) {
        auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), body_length_);
        if (ec != std::errc() || p != cl.data() + cl.size()) {
          return refuse(s, 400, "invalid Content-Length");
        }
        if (body_length_ > server_.options().max_body_size) return refuse(s, 413, "request body too large");
      }
      // The head's views die with this read buffer: own the request now.
      pending_ = make_request(s);
      pending_handler_ = handler;
      offset += head_size;
      in_body_ = true;
      parser_.reset();
      head_valid_ = false;
      continue;
    }
    // Body (possibly empty) of a plain request.
    if (len - offset < body_length_) break;
    pending_.body.assign(reinterpret_cast<const char*>(data) + offset, body_length_);
    offset += body_length_;
    in_body_ = false;
    answer_plain(s, *pending_handler_, std::move(pending_));
    pending_ = Request{};
    started_ = s.loop().now();
    deadline_ = started_ + server_.options().header_timeout;
  }
  // Keep what is not consumed (part of a head or body) for the next read.
  if (s.closing()) return;
  if (from_buffer) {
    buf_.erase(0, offset);
  } else if (offset < len) {
    buf_.assign(reinterpret_cast<const char*>(data) + offset, len - offset);
  }
}

void HttpSession::answer_plain(Socket& s, const HttpHandler& handler, Request request) {
  Response response;
  try {
    handler(request, response);
  } catch (...) {
    log_error("http: {} {} {}: handler threw: {}", request.remote_address, request.method, request.path,
              describe_exception(std::current_exception()));
    response = Response::text(500, "internal server error\n");
  }
  // HTTP/1.1 keeps the connection unless either side says close (RFC 9112 §9.3).
  auto conn_header = request.header("connection");
  bool close = request.version_minor == 0 || (conn_header && proto::header_has_token(*conn_header, "close"));
  std::string extra;
  for (auto& [name, value] : response.headers) {
    extra += name;
    extra += ": ";
    extra += value;
    extra += "\r\n";
  }
  std::string head = response_head(response.status, response.body.size(), close, extra);
  bool head_only = request.method == "HEAD";
  AccessEvent e;
  e.kind = AccessEvent::Kind::http;
  e.remote = request.remote_address;
  e.remote_port = request.remote_port;
  if (request.client_address != request.remote_address) e.client = request.client_address;
  e.forwarded_for = request.header("x-forwarded-for").value_or("");
  e.method = request.method;
  e.path = request.path;
  e.status = response.status;
  e.duration = since(started_);
  e.bytes_out = response.body.size();
  emit_access(server_.options().on_access, e);
  s.write2(head.data(), head.size(), response.body.data(), head_only ? 0 : response.body.size());
  if (close) s.close_after_flush();
}

}  // namespace

std::shared_ptr<SocketHandler> HttpServer::make_session(Socket& socket) {
  return std::make_shared<HttpSession>(*this, socket);
}

}  // namespace windlass::detail
