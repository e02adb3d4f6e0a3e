#include "api_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "channels/signature.hpp"

namespace windlass::load {
namespace {

constexpr size_t kMaxAnswer = 64 * 1024;

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_token(std::string_view list, std::string_view token) noexcept {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// A chunked body (RFC 9112 §7.1) at the start of `in`: the decoded bytes
// into `body` and the encoded length into `used`. 1: complete, 0: more
// bytes needed, -1: malformed.
int decode_chunked(std::string_view in, std::string& body, size_t& used) {
  body.clear();
  size_t at = 0;
  for (;;) {
    const size_t line_end = in.find("\r\n", at);
    if (line_end == std::string_view::npos) return in.size() - at > 64 ? -1 : 0;
    std::string_view size_text = in.substr(at, line_end - at);
    size_text = size_text.substr(0, size_text.find(';'));  // chunk extensions
    size_t size = 0;
    const auto [ptr, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc() || ptr != size_text.data() + size_text.size() || size > kMaxAnswer) return -1;
    at = line_end + 2;
    if (size == 0) {
      // Trailer fields, then an empty line.
      const size_t end = in.find("\r\n", at);
      if (end == std::string_view::npos) return 0;
      if (end != at) {
        const size_t trailers_end = in.find("\r\n\r\n", at);
        if (trailers_end == std::string_view::npos) return 0;
        used = trailers_end + 4;
        return 1;
      }
      used = at + 2;
      return 1;
    }
    if (in.size() < at + size + 2) return 0;
    if (in.substr(at + size, 2) != "\r\n") return -1;
    body.append(in.substr(at, size));
    at += size + 2;
  }
}

}  // namespace

// ---------------------------------------------------------------- ApiLane

ApiLane::ApiLane(ClientLoop& loop, const Target& target, ApiLaneOwner& owner, ApiLaneCounters& counters,
                 size_t index, bool ask_close)
    : loop_(loop),
      target_(target),
      owner_(owner),
      counters_(counters),
      index_(index),
      ask_close_(ask_close) {}

ApiLane::~ApiLane() {
  close_fd();
}

void ApiLane::close_fd() {
  if (fd_ >= 0) ::close(fd_);  // also leaves the epoll set
  fd_ = -1;
  want_write_ = false;
  out_.clear();
  out_sent_ = 0;
  in_.clear();
}

void ApiLane::connect() {
  if (state_ == State::shut) return;
  close_fd();
  const int fd = socket(target_.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return failed(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd_ = fd;
  state_ = State::connecting;
  ++counters_.connects;
  if (!loop_.watch(fd_, EPOLLIN | EPOLLOUT, *this))
    return failed(std::string("epoll_ctl: ") + std::strerror(errno));
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&target_.address), target_.address_len) != 0 &&
      errno != EINPROGRESS) {
    return failed(std::string("connect to the API: ") + std::strerror(errno));
  }
}

void ApiLane::shut() {
  close_fd();
  state_ = State::shut;
}

void ApiLane::failed(const std::string& why) {
  close_fd();
  state_ = State::shut;
  owner_.on_lane_failed(*this, why);
}

void ApiLane::on_events(uint32_t events) {
  if (fd_ < 0) return;  // closed earlier in this poll
  if (state_ == State::connecting) {
    on_connected();
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable();
  if ((events & EPOLLOUT) && fd_ >= 0) flush();
}

void ApiLane::on_connected() {
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
    return failed(std::string("connect to the API: ") + std::strerror(error ? error : errno));
  }
  if (!loop_.rewatch(fd_, EPOLLIN, *this)) return failed(std::string("epoll_ctl: ") + std::strerror(errno));
  state_ = State::ready;
  owner_.on_lane_ready(*this);
}

void ApiLane::post(std::string_view request) {
  if (state_ != State::ready) return failed("a request was posted on a lane that was not ready (a bug)");
  out_.assign(request);
  out_sent_ = 0;
  state_ = State::busy;
  sent_ns_ = monotonic_ns();
  ++counters_.requests;
  flush();
}

void ApiLane::flush() {
  while (out_sent_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
    if (n > 0) {
      out_sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!want_write_) {
        want_write_ = true;
        loop_.rewatch(fd_, EPOLLIN | EPOLLOUT, *this);
      }
      return;
    }
    // Reset by the server: the read side says how.
    out_sent_ = out_.size();
  }
  if (want_write_) {
    want_write_ = false;
    loop_.rewatch(fd_, EPOLLIN, *this);
  }
}

void ApiLane::on_readable() {
  char buffer[16384];
  const ssize_t n = ::read(fd_, buffer, sizeof buffer);
  if (n > 0) {
    if (state_ != State::busy) {
      return failed("the API sent " + std::to_string(n) + " bytes with no request in flight");
    }
    in_.append(buffer, static_cast<size_t>(n));
    try_answer(false);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (state_ == State::busy) {
    try_answer(true);
    return;
  }
  lost(true);
}

void ApiLane::lost(bool server_closed) {
  close_fd();
  if (server_closed) ++counters_.closed_by_server;
  state_ = State::closed;
  connect();
}

bool ApiLane::try_answer(bool eof) {
  const size_t head_end = in_.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (eof) {
      failed(in_.empty() ? "the API closed the connection without answering"
                         : "the API closed the connection in the middle of an answer's head");
      return false;
    }
    if (in_.size() > kMaxAnswer) {
      failed("an answer's head is longer than 64 KiB");
      return false;
    }
    return true;
  }
  std::string_view head(in_.data(), head_end + 2);
  const size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  int status = 0;
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
      std::from_chars(status_line.data() + 9, status_line.data() + 12, status).ptr !=
          status_line.data() + 12 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    failed("the API's answer does not start with an HTTP/1.x status line: " +
           std::string(status_line.substr(0, 200)));
    return false;
  }
  bool keep_alive = status_line[7] == '1';
  bool chunked = false;
  bool has_length = false;
  size_t content_length = 0;
  head.remove_prefix(line_end + 2);
  while (!head.empty()) {
    const size_t end = head.find("\r\n");
    const std::string_view line = head.substr(0, end);
    head.remove_prefix(end + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      failed("a header line without ':' in the API's answer");
      return false;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (ec != std::errc() || ptr != value.data() + value.size() || has_length ||
          content_length > kMaxAnswer) {
        failed("a bad or repeated Content-Length in the API's answer");
        return false;
      }
      has_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = has_token(value, "chunked");
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) keep_alive = false;
      if (has_token(value, "keep-alive")) keep_alive = true;
    }
  }
  const size_t body_at = head_end + 4;
  std::string body;
  size_t used = 0;
  if (chunked) {
    const int r = decode_chunked(std::string_view(in_).substr(body_at), body, used);
    if (r < 0) {
      failed("a malformed chunked body in the API's answer");
      return false;
    }
    if (r == 0) {
      if (eof) failed("the API closed the connection in the middle of an answer's body");
      return !eof;
    }
    used += body_at;
  } else if (has_length) {
    if (in_.size() < body_at + content_length) {
      if (eof) failed("the API closed the connection in the middle of an answer's body");
      return !eof;
    }
    body.assign(in_, body_at, content_length);
    used = body_at + content_length;
  } else {
    // Delimited by the end of the connection.
    if (!eof) {
      if (in_.size() > kMaxAnswer) {
        failed("an answer without a length is longer than 64 KiB");
        return false;
      }
      return true;
    }
    body.assign(in_, body_at);
    used = in_.size();
    keep_alive = false;
  }
  if (used != in_.size()) {
    failed("the API sent bytes after its answer (no request was pipelined)");
    return false;
  }
  ++counters_.answers;
  in_.clear();
  if (!keep_alive || eof || ask_close_) {
    // Closed (or to be closed) after this answer: reconnect at once, so the
    // next request does not wait for a handshake.
    close_fd();
    if (!ask_close_) ++counters_.closed_by_server;
    state_ = State::closed;
    connect();
  } else {
    state_ = State::ready;
  }
  if (state_ != State::shut) owner_.on_answer(*this, status, body);
  return true;
}

// ---------------------------------------------------------------- EventRequestBuilder

EventRequestBuilder::EventRequestBuilder(std::string app_id, std::string_view key, std::string_view secret,
                                         std::string host_header, bool ask_close)
    : app_id_(std::move(app_id)),
      key_(key),
      host_header_(std::move(host_header)),
      ask_close_(ask_close),
      signer_(std::make_unique<channels::AppSigner>(key, secret)),
      md5_(std::make_unique<channels::Md5Hasher>()),
      to_sign_path_("/apps/" + app_id_ + "/events") {}

EventRequestBuilder::~EventRequestBuilder() = default;

bool EventRequestBuilder::build(std::string& out, std::string_view body, int64_t unix_seconds) {
  channels::Md5Hex md5;
  if (!md5_->hex(body, md5)) return false;
  // The parameters sorted by name: auth_key, auth_timestamp, auth_version, body_md5.
  query_.assign("auth_key=");
  query_ += key_;
  query_ += "&auth_timestamp=";
  query_ += std::to_string(unix_seconds);
  query_ += "&auth_version=1.0&body_md5=";
  query_ += md5.view();
  channels::Sha256Hex signature;
  if (!signer_->sign({"POST\n", to_sign_path_, "\n", query_}, signature)) return false;

  out.assign("POST ");
  out += to_sign_path_;
  out += '?';
  out += query_;
  out += "&auth_signature=";
  out += signature.view();
  out += " HTTP/1.1\r\nHost: ";
  out += host_header_;
  out += "\r\nContent-Type: application/json\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += ask_close_ ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n";
  out += body;
  return true;
}

}  // namespace windlass::load
