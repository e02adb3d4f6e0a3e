// HttpClient: libcurl's multi interface on a windlass Loop.
//
// How curl is driven (the "multi_socket" way, as in curl's hiperfifo and
// evhiperfifo examples):
// - CURLMOPT_SOCKETFUNCTION tells us which sockets curl wants watched for
//   what. Each one gets a Watch (an IoHandler) registered with the loop's
//   epoll; readiness calls curl_multi_socket_action(fd, in/out/err).
// - CURLMOPT_TIMERFUNCTION tells us when curl next needs to be called
//   without any socket ready (timeouts, connect retries, the kick after a
//   handle is added): one loop timer, re-armed or cancelled as curl asks,
//   that calls curl_multi_socket_action(CURL_SOCKET_TIMEOUT).
// - After every socket_action, finished transfers are read with
//   curl_multi_info_read and completed.
//
// Re-entrancy. curl calls the socket and timer callbacks from inside
// curl_multi_* functions, so those callbacks only touch loop registrations
// and never call back into curl_multi_*. User callbacks never run inside a
// curl call: completions are collected first (curl_multi_info_read's
// messages die with curl_multi_remove_handle), then each transfer is
// removed from the multi handle and its callback runs. A callback may
// call request(), cancel() or destroy the client; every loop that runs
// callbacks holds a weak reference to `alive_` and stops when it expires.
//
// Descriptors. A Watch is never freed while the loop may still hold an
// epoll event naming it (events for several sockets come back in one
// epoll_wait, and handling the first may close the second): a retired
// Watch forgets its client and is freed by a deferred task, after the
// turn's events are dispatched. curl closes its sockets through
// CURLOPT_CLOSESOCKETFUNCTION, which removes the registration right
// before the close(), so no epoll registration outlives its socket and a
// reused descriptor number starts clean; CURL_POLL_REMOVE for a socket we
// do not watch (curl may send it for sockets it never asked us to watch)
// is ignored, so we never touch a registration that is not ours.
#include "windlass/http_client.hpp"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "log.hpp"
#include "windlass/component.hpp"

#ifndef WINDLASS_VERSION
#define WINDLASS_VERSION "0"
#endif

namespace windlass {

namespace {

using namespace std::chrono_literals;
using detail::log_error;
using detail::log_warn;

// A response head past this (all header lines of one response) fails the
// request with too_large: the peer does not choose our memory.
constexpr size_t kMaxResponseHeadBytes = 64 * 1024;

constexpr const char* kProtocols = "http,https";

char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// RFC 9110 §5.6.2: token = 1*tchar.
bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// CR, LF and NUL would end a header line early (request splitting).
bool has_line_break(std::string_view s) noexcept {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

HttpClientError classify(CURLcode code) noexcept {
  switch (code) {
    case CURLE_OK: return HttpClientError::none;
    case CURLE_OPERATION_TIMEDOUT: return HttpClientError::timeout;
    case CURLE_COULDNT_CONNECT: return HttpClientError::connect_failed;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return HttpClientError::dns;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED: return HttpClientError::tls;
    case CURLE_FILESIZE_EXCEEDED: return HttpClientError::too_large;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return HttpClientError::connection_lost;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return HttpClientError::invalid_request;
    default: return HttpClientError::other;
  }
}

// A callback that throws is logged and otherwise ignored: the exception
// must not leave a loop callback (or the rest of a batch undelivered).
void run_callback(const HttpClient::Callback& cb, HttpClientResult result) noexcept {
  try {
    cb(std::move(result));
  } catch (...) {
    log_error("http client: request callback threw: {}", describe_exception(std::current_exception()));
  }
}

void global_init() {
  static std::once_flag once;
  static CURLcode code = CURLE_OK;
  // Once per process, and never undone: curl_global_cleanup is not safe
  // while any other thread may still use libcurl.
  std::call_once(once, [] { code = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (code != CURLE_OK) {
    throw std::runtime_error(std::string("curl_global_init: ") + curl_easy_strerror(code));
  }
}

}  // namespace

const char* describe(HttpClientError e) noexcept {
  switch (e) {
    case HttpClientError::none: return "no error";
    case HttpClientError::timeout: return "timed out";
    case HttpClientError::connect_failed: return "connection refused or failed";
    case HttpClientError::dns: return "host name did not resolve";
    case HttpClientError::tls: return "TLS handshake or certificate verification failed";
    case HttpClientError::too_large: return "response too large";
    case HttpClientError::connection_lost: return "connection lost before a complete response";
    case HttpClientError::cancelled: return "cancelled";
    case HttpClientError::queue_full: return "request queue full";
    case HttpClientError::invalid_request: return "invalid request";
    case HttpClientError::other: return "request failed";
  }
  return "request failed";
}

std::optional<std::string_view> HttpClientResult::header(std::string_view name) const {
  for (auto& [n, v] : headers) {
    if (iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

// ------------------------------------------------------------------ Impl

struct HttpClient::Impl {
  // One request, from request() until its callback runs.
  struct Transfer {
    RequestId id = 0;
    HttpClientRequest request;
    Callback callback;
    Loop::Clock::time_point deadline;
    Loop::TimerId queue_timer = 0;  // while queued: fires at the deadline
    CURL* easy = nullptr;           // while in flight
    curl_slist* header_list = nullptr;
    CURLcode code = CURLE_OK;  // set when curl reports it done
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    size_t head_bytes = 0;  // of the current response head
    std::string overflow;   // why our own callbacks stopped the transfer
    char error_buffer[CURL_ERROR_SIZE] = {};

    Transfer() = default;
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;
    ~Transfer() {
      if (easy != nullptr) curl_easy_cleanup(easy);
      if (header_list != nullptr) curl_slist_free_all(header_list);
    }
  };

  // One socket curl asked us to watch.
  struct Watch final : IoHandler {
    Watch(Impl* owner, int fd, uint32_t events) : owner_(owner), fd_(fd), events_(events) {}
    void on_io(uint32_t events) override {
      if (owner_ != nullptr) owner_->on_socket_ready(fd_, events);
    }
    Impl* owner_;  // null once retired
    int fd_;
    uint32_t events_;
  };

  // A result whose callback runs at the end of the loop turn.
  struct Ready {
    Callback callback;
    HttpClientResult result;
  };

  Impl(Loop& l, HttpClientOptions o) : loop(l), options(std::move(o)) {
    global_init();
    options.max_concurrent = std::max<size_t>(options.max_concurrent, 1);
    if (options.max_idle_connections == 0) options.max_idle_connections = options.max_concurrent;
    user_agent = options.user_agent.empty() ? std::string("windlass/" WINDLASS_VERSION) : options.user_agent;
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::curl_socket_cb);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::curl_timer_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(options.max_idle_connections));
  }

  ~Impl() {
    alive.reset();   // deferred tasks and running callback loops see it
    closing = true;  // curl's callbacks below may remove watches, not add them or timers
    if (timer != 0) loop.cancel_timer(timer);
    for (auto& [id, t] : queue) loop.cancel_timer(t->queue_timer);
    queue.clear();
    // A transfer removed before it finished closes its connection, through
    // curl_close_cb, which unregisters the socket before closing it.
    for (auto& [id, t] : active) curl_multi_remove_handle(multi, t->easy);
    active.clear();
    curl_multi_cleanup(multi);  // closes the idle connections the same way
    for (auto& [fd, w] : watches) {
      loop.remove_fd(fd);
      w->owner_ = nullptr;
      loop.defer([w = std::move(w)] {});
    }
  }

  // ---- requests

  RequestId submit(HttpClientRequest req, Callback cb) {
    RequestId id = next_id++;
    if (std::string why = validate(req); !why.empty()) {
      post_ready(std::move(cb), error_result(HttpClientError::invalid_request, std::move(why)));
      return id;
    }
    auto t = std::make_unique<Transfer>();
    t->id = id;
    t->deadline = Loop::Clock::now() + req.timeout;
    t->request = std::move(req);
    t->callback = std::move(cb);
    if (active.size() < options.max_concurrent && queue.empty()) {
      start(std::move(t));
    } else if (queue.size() < options.max_queued) {
      t->queue_timer = loop.add_timer(t->request.timeout, [this, id] { expire_queued(id); });
      queue.emplace(id, std::move(t));
    } else {
      post_ready(std::move(t->callback),
                 error_result(HttpClientError::queue_full, std::to_string(active.size()) +
                                                               " requests in flight and " +
                                                               std::to_string(queue.size()) + " queued"));
    }
    return id;
  }

  static std::string validate(const HttpClientRequest& req) {
    if (!is_token(req.method)) return "method is not an HTTP token";
    if (req.url.empty() || has_line_break(req.url)) return "empty URL or URL with CR, LF or NUL";
    if (req.timeout <= 0ms) return "timeout must be positive";
    if (req.connect_timeout < 0ms) return "connect_timeout must not be negative";
    for (auto& [name, value] : req.headers) {
      if (!is_token(name)) return "header name is not an HTTP token: " + name;
      if (has_line_break(value)) return "header value with CR, LF or NUL: " + name;
      // The body's framing is ours to write: a second, different length
      // would let the peer read the rest of the body as another request.
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) {
        return name + " is set from the body";
      }
    }
    return {};
  }

  // Hands a transfer to curl (or fails it, at the end of the turn).
  void start(std::unique_ptr<Transfer> t) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t->deadline - Loop::Clock::now());
    if (left <= 0ms) {
      post_ready(std::move(t->callback), error_result(HttpClientError::timeout, "timed out in the queue"));
      return;
    }
    if (std::string why = configure(*t, left); !why.empty()) {
      post_ready(std::move(t->callback), error_result(HttpClientError::other, std::move(why)));
      return;
    }
    CURLMcode rc = curl_multi_add_handle(multi, t->easy);
    if (rc != CURLM_OK) {
      post_ready(std::move(t->callback),
                 error_result(HttpClientError::other,
                              std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc)));
      return;
    }
    RequestId id = t->id;
    active.emplace(id, std::move(t));
  }

  // The easy handle for one transfer. Returns why it could not be made.
  std::string configure(Transfer& t, std::chrono::milliseconds left) {
    CURL* e = curl_easy_init();
    if (e == nullptr) return "curl_easy_init failed";
    t.easy = e;
    const HttpClientRequest& r = t.request;
    CURLcode rc = CURLE_OK;
    auto set = [&](auto option, auto value) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(e, option, value);
    };
    set(CURLOPT_PRIVATE, static_cast<void*>(&t));
    set(CURLOPT_ERRORBUFFER, t.error_buffer);
    set(CURLOPT_URL, r.url.c_str());
    // libcurl installs no signal handler and uses no alarm() (which would
    // hit a random thread of a multi-threaded server). Its sends use
    // MSG_NOSIGNAL on Linux; App ignores SIGPIPE besides.
    set(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    set(CURLOPT_PROTOCOLS_STR, kProtocols);
    set(CURLOPT_REDIR_PROTOCOLS_STR, kProtocols);
#else
    set(CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    set(CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    set(CURLOPT_FOLLOWLOCATION, r.max_redirects > 0 ? 1L : 0L);
    if (r.max_redirects > 0) set(CURLOPT_MAXREDIRS, static_cast<long>(r.max_redirects));
    set(CURLOPT_USERAGENT, user_agent.c_str());
    if (!options.proxy.empty()) {
      set(CURLOPT_PROXY, options.proxy.c_str());
      set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    } else if (!options.proxy_from_environment) {
      set(CURLOPT_PROXY, "");  // "" turns the environment's *_proxy variables off
    }
    if (!options.ca_file.empty()) set(CURLOPT_CAINFO, options.ca_file.c_str());
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
    auto connect = r.connect_timeout > 0ms ? std::min(r.connect_timeout, left) : left;
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect.count()));
    set(CURLOPT_WRITEFUNCTION, &Impl::curl_body_cb);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&t));
    set(CURLOPT_HEADERFUNCTION, &Impl::curl_header_cb);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    set(CURLOPT_CLOSESOCKETFUNCTION, &Impl::curl_close_cb);
    set(CURLOPT_CLOSESOCKETDATA, static_cast<void*>(this));

    bool head = r.method == "HEAD";
    bool sends_body = !head && (!r.body.empty() || r.method == "POST");
    // Announced lengths are refused before any byte of the body arrives.
    // (HEAD has no body; curl would still check its Content-Length.)
    if (!head && r.max_response_size > 0) {
      set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(r.max_response_size));
    }
    if (head) {
      set(CURLOPT_NOBODY, 1L);
    } else if (sends_body) {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      set(CURLOPT_POSTFIELDS, r.body.data());  // not copied: the Transfer owns it
      if (r.method != "POST") set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
    } else if (r.method != "GET") {
      set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }

    bool has_expect = false, has_type = false;
    for (auto& [name, value] : r.headers) {
      has_expect = has_expect || iequals(name, "expect");
      has_type = has_type || iequals(name, "content-type");
      // curl's syntax: "Name:" removes a header, "Name;" sends it empty.
      std::string line = value.empty() ? name + ";" : name + ": " + value;
      if (!append_header(t, line.c_str())) return "out of memory";
    }
    // curl waits up to a second for "100 Continue" before a large body;
    // a web application answering a webhook does not need the round trip.
    if (!has_expect && !append_header(t, "Expect:")) return "out of memory";
    if (sends_body && !has_type && !append_header(t, "Content-Type:")) return "out of memory";
    set(CURLOPT_HTTPHEADER, t.header_list);
    if (rc != CURLE_OK) return std::string("curl_easy_setopt: ") + curl_easy_strerror(rc);
    return {};
  }

  static bool append_header(Transfer& t, const char* line) {
    curl_slist* l = curl_slist_append(t.header_list, line);
    if (l == nullptr) return false;
    t.header_list = l;
    return true;
  }

  void start_queued() {
    while (active.size() < options.max_concurrent && !queue.empty()) {
      auto it = queue.begin();  // ids grow, so the smallest waited longest
      std::unique_ptr<Transfer> t = std::move(it->second);
      queue.erase(it);
      loop.cancel_timer(t->queue_timer);
      t->queue_timer = 0;
      start(std::move(t));
    }
  }

  void expire_queued(RequestId id) {
    auto it = queue.find(id);
    if (it == queue.end()) return;
    std::unique_ptr<Transfer> t = std::move(it->second);
    queue.erase(it);
    Callback cb = std::move(t->callback);
    auto waited = t->request.timeout;
    t.reset();
    // A loop timer, not a curl callback: the callback may run right here.
    run_callback(cb, error_result(HttpClientError::timeout,
                                  "timed out in the queue after " + std::to_string(waited.count()) + " ms"));
  }

  bool cancel(RequestId id) {
    if (auto it = queue.find(id); it != queue.end()) {
      std::unique_ptr<Transfer> t = std::move(it->second);
      queue.erase(it);
      loop.cancel_timer(t->queue_timer);
      post_ready(std::move(t->callback), error_result(HttpClientError::cancelled, "cancelled"));
      return true;
    }
    if (auto it = active.find(id); it != active.end()) {
      std::unique_ptr<Transfer> t = std::move(it->second);
      active.erase(it);
      // Never called from inside curl (user code does not run there), so
      // removing the handle here is allowed; an unfinished transfer's
      // connection is closed.
      curl_multi_remove_handle(multi, t->easy);
      post_ready(std::move(t->callback), error_result(HttpClientError::cancelled, "cancelled"));
      t.reset();
      start_queued();
      return true;
    }
    return false;
  }

  static HttpClientResult error_result(HttpClientError e, std::string text) {
    HttpClientResult r;
    r.error = e;
    r.error_text = std::move(text);
    return r;
  }

  void post_ready(Callback cb, HttpClientResult result) {
    ready.push_back(Ready{std::move(cb), std::move(result)});
    if (ready_scheduled) return;
    ready_scheduled = true;
    loop.defer([weak = std::weak_ptr<int>(alive), this] {
      if (weak.expired()) return;
      run_ready();
    });
  }

  void run_ready() {
    ready_scheduled = false;
    std::vector<Ready> batch;
    batch.swap(ready);
    std::weak_ptr<int> weak = alive;
    for (auto& r : batch) {
      run_callback(r.callback, std::move(r.result));
      if (weak.expired()) return;  // a callback destroyed the client: drop the rest
    }
  }

  // ---- driving curl

  void socket_action(int fd, int flags) {
    int running = 0;
    CURLMcode rc = curl_multi_socket_action(multi, fd, flags, &running);
    if (rc != CURLM_OK) log_warn("http client: curl_multi_socket_action: {}", curl_multi_strerror(rc));
    complete_finished();
  }

  void on_socket_ready(int fd, uint32_t events) {
    int flags = 0;
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) != 0) flags |= CURL_CSELECT_IN;
    if ((events & EPOLLOUT) != 0) flags |= CURL_CSELECT_OUT;
    if ((events & EPOLLERR) != 0) flags |= CURL_CSELECT_ERR;
    socket_action(fd, flags);
  }

  void on_timer() {
    timer = 0;  // one-shot: curl re-arms it from inside socket_action if needed
    socket_action(CURL_SOCKET_TIMEOUT, 0);
  }

  // Collects every finished transfer, then completes them one by one: the
  // messages must not be used after curl_multi_remove_handle, and a
  // callback may cancel a transfer of this batch or destroy the client.
  void complete_finished() {
    std::vector<RequestId> done;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      char* p = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
      auto* t = reinterpret_cast<Transfer*>(p);
      t->code = msg->data.result;
      done.push_back(t->id);
    }
    std::weak_ptr<int> weak = alive;
    for (RequestId id : done) {
      if (weak.expired()) return;
      complete(id);
    }
  }

  void complete(RequestId id) {
    auto it = active.find(id);
    if (it == active.end()) return;  // cancelled by an earlier callback of the batch
    std::unique_ptr<Transfer> t = std::move(it->second);
    active.erase(it);
    curl_multi_remove_handle(multi, t->easy);  // the connection goes back to the cache
    HttpClientResult r;
    if (t->code == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      r.status = static_cast<int>(status);
      r.headers = std::move(t->headers);
      r.body = std::move(t->body);
    } else if (!t->overflow.empty()) {
      r.error = HttpClientError::too_large;
      r.error_text = std::move(t->overflow);
    } else if (t->code == CURLE_FILESIZE_EXCEEDED) {
      r.error = HttpClientError::too_large;
      r.error_text = "response body over " + std::to_string(t->request.max_response_size) +
                     " bytes (announced by Content-Length)";
    } else {
      r.error = classify(t->code);
      r.error_text = t->error_buffer[0] != '\0' ? t->error_buffer : curl_easy_strerror(t->code);
    }
    Callback cb = std::move(t->callback);
    t.reset();
    start_queued();  // the slot is free before the callback asks for more
    run_callback(cb, std::move(r));
  }

  void watch(int fd, int what) {
    if (closing) return;
    uint32_t events =
        ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0u);
    if (auto it = watches.find(fd); it != watches.end()) {
      Watch& w = *it->second;
      if (w.events_ == events) return;
      try {
        loop.modify_fd(fd, events, &w);
        w.events_ = events;
        return;
      } catch (const std::exception&) {
        // Not registered any more (closed behind our back, number reused):
        // start over with a fresh registration.
        retire(it);
      }
    }
    auto w = std::make_shared<Watch>(this, fd, events);
    try {
      loop.add_fd(fd, events, w.get());
    } catch (const std::exception& e) {
      // curl asked for a socket we cannot watch (already closed, or the
      // number belongs to someone else's registration, which we leave
      // alone). Tell curl it failed, so its transfer ends now instead of
      // at its timeout.
      log_warn("http client: cannot watch socket {}: {}", fd, e.what());
      loop.defer([weak = std::weak_ptr<int>(alive), this, fd] {
        if (!weak.expired()) socket_action(fd, CURL_CSELECT_ERR);
      });
      return;
    }
    watches.emplace(fd, std::move(w));
  }

  void unwatch(int fd) {
    auto it = watches.find(fd);
    if (it == watches.end()) return;  // not ours: leave epoll alone
    loop.remove_fd(fd);
    retire(it);
  }

  void retire(std::unordered_map<int, std::shared_ptr<Watch>>::iterator it) {
    it->second->owner_ = nullptr;
    // Freed after this turn's events are dispatched: one of them may still name it.
    loop.defer([w = std::move(it->second)] {});
    watches.erase(it);
  }

  void arm_timer(long timeout_ms) {
    if (closing) return;
    if (timer != 0) {
      loop.cancel_timer(timer);
      timer = 0;
    }
    if (timeout_ms < 0) return;  // -1: no timeout wanted
    // A 0 ms timer runs next turn, never from inside this curl call.
    timer = loop.add_timer(std::chrono::milliseconds(timeout_ms), [this] { on_timer(); });
  }

  // ---- curl's callbacks (C: no exception may leave them)

  static int curl_socket_cb(CURL*, curl_socket_t fd, int what, void* userp, void*) {
    auto* self = static_cast<Impl*>(userp);
    try {
      if (what == CURL_POLL_REMOVE) {
        self->unwatch(fd);
      } else {
        self->watch(fd, what);
      }
    } catch (const std::exception& e) {
      log_warn("http client: socket {}: {}", fd, e.what());
    }
    return 0;
  }

  static int curl_timer_cb(CURLM*, long timeout_ms, void* userp) {
    try {
      static_cast<Impl*>(userp)->arm_timer(timeout_ms);
      return 0;
    } catch (const std::exception&) {
      return -1;  // curl fails every transfer rather than leave them without a timer
    }
  }

  static int curl_close_cb(void* clientp, curl_socket_t fd) {
    try {
      static_cast<Impl*>(clientp)->unwatch(fd);
    } catch (const std::exception& e) {
      log_warn("http client: socket {}: {}", fd, e.what());
    }
    return ::close(fd);
  }

  static size_t curl_body_cb(char* data, size_t size, size_t count, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    size_t n = size * count;
    if (n > t->request.max_response_size - std::min(t->body.size(), t->request.max_response_size)) {
      t->overflow = "response body over " + std::to_string(t->request.max_response_size) + " bytes";
      return 0;  // anything but n aborts the transfer
    }
    try {
      t->body.append(data, n);
    } catch (const std::bad_alloc&) {
      return 0;
    }
    return n;
  }

  static size_t curl_header_cb(char* data, size_t size, size_t count, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    size_t n = size * count;
    std::string_view line(data, n);
    try {
      // A status line starts a new response head (a 100 Continue, a
      // followed redirect, a proxy's CONNECT answer): keep the last only.
      if (line.starts_with("HTTP/")) {
        t->headers.clear();
        t->head_bytes = 0;
      }
      t->head_bytes += n;
      if (t->head_bytes > kMaxResponseHeadBytes) {
        t->overflow = "response head over " + std::to_string(kMaxResponseHeadBytes) + " bytes";
        return 0;
      }
      if (line.starts_with("HTTP/")) return n;
      if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
        // obs-fold (RFC 9112 §5.2): a continuation of the previous value.
        std::string_view more = trim(line);
        if (!t->headers.empty() && !more.empty()) {
          t->headers.back().second.append(" ").append(more);
        }
        return n;
      }
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) return n;  // the blank line ending the head
      t->headers.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
    } catch (const std::bad_alloc&) {
      return 0;
    }
    return n;
  }

  Loop& loop;
  HttpClientOptions options;
  std::string user_agent;
  CURLM* multi = nullptr;
  std::unordered_map<int, std::shared_ptr<Watch>> watches;  // by descriptor
  Loop::TimerId timer = 0;                                  // curl's one timeout
  std::unordered_map<RequestId, std::unique_ptr<Transfer>> active;
  std::map<RequestId, std::unique_ptr<Transfer>> queue;  // in request() order
  std::vector<Ready> ready;
  bool ready_scheduled = false;
  bool closing = false;
  RequestId next_id = 1;
  // Expires when the client is destroyed; deferred tasks and loops that run
  // user callbacks hold weak references to it.
  std::shared_ptr<int> alive = std::make_shared<int>(0);
};

// ------------------------------------------------------------- HttpClient

HttpClient::HttpClient(Loop& loop, HttpClientOptions options) {
  assert(loop.in_loop_thread() && "HttpClient: create it on its loop's thread");
  impl_ = std::make_unique<Impl>(loop, std::move(options));
}

HttpClient::~HttpClient() {
  assert(impl_->loop.in_loop_thread() && "HttpClient: loop thread only");
}

HttpClient::RequestId HttpClient::request(HttpClientRequest request, Callback callback) {
  assert(impl_->loop.in_loop_thread() && "HttpClient: loop thread only");
  return impl_->submit(std::move(request), std::move(callback));
}

bool HttpClient::cancel(RequestId id) {
  assert(impl_->loop.in_loop_thread() && "HttpClient: loop thread only");
  return impl_->cancel(id);
}

size_t HttpClient::in_flight() const noexcept {
  return impl_->active.size();
}

size_t HttpClient::queued() const noexcept {
  return impl_->queue.size();
}

}  // namespace windlass
