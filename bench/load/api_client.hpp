// The pusher mode's publisher: HTTP/1.1 connections ("lanes") to a Pusher
// server's HTTP API, on the load generator's epoll loop, each with at most
// one request in flight, and the signed POST /apps/{id}/events requests
// they carry (Pusher REST API authentication: auth_key, auth_timestamp,
// auth_version, body_md5, auth_signature = hex HMAC-SHA256 of
// "POST\n/apps/{id}/events\n" + the sorted query, signed with the channels
// core's AppSigner and Md5Hasher).
//
// A lane asks for keep-alive unless told to close (Connection: close). A
// server that closes the connection after an answer (Soketi does, after
// every one) is counted, and the lane reconnects at once, so the next
// request does not wait for the handshake; the load generator's own
// numbers (publish-to-receipt latency) then start at the write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "client_loop.hpp"

namespace windlass::channels {
class AppSigner;
class Md5Hasher;
}  // namespace windlass::channels

namespace windlass::load {

class ApiLane;

// What a lane reports; every call is on the loop's thread.
class ApiLaneOwner {
 public:
  virtual ~ApiLaneOwner() = default;
  // Connected, with nothing in flight: post() may be called.
  virtual void on_lane_ready(ApiLane& lane) = 0;
  // The answer to the request in flight (any status).
  virtual void on_answer(ApiLane& lane, int status, std::string_view body) = 0;
  // Connecting failed, the connection broke with a request in flight, or
  // the answer was not HTTP/1.1 as expected. The lane is closed and does
  // not reconnect.
  virtual void on_lane_failed(ApiLane& lane, const std::string& why) = 0;
};

struct ApiLaneCounters {
  uint64_t connects = 0;          // TCP connections opened
  uint64_t closed_by_server = 0;  // connections the server closed or said it would close after an answer
  uint64_t requests = 0;          // requests written
  uint64_t answers = 0;           // answers read
};

class ApiLane final : public Watcher {
 public:
  // `counters` is shared by the lanes of a run and outlives them.
  ApiLane(ClientLoop& loop, const Target& target, ApiLaneOwner& owner, ApiLaneCounters& counters,
          size_t index, bool ask_close);
  ~ApiLane() override;
  ApiLane(const ApiLane&) = delete;
  ApiLane& operator=(const ApiLane&) = delete;

  size_t index() const noexcept { return index_; }
  bool ready() const noexcept { return state_ == State::ready; }
  bool busy() const noexcept { return state_ == State::busy; }
  // When the request in flight was written.
  uint64_t sent_ns() const noexcept { return sent_ns_; }
  // What the owner says the request in flight is (a probe, a data event).
  uint64_t tag = 0;

  // Opens the connection; on_lane_ready follows (or on_lane_failed).
  void connect();
  // Writes one complete request; the lane must be ready().
  void post(std::string_view request);
  // Closes the connection for good: no reconnect, no callback.
  void shut();

  void on_events(uint32_t events) override;

 private:
  enum class State : uint8_t { closed, connecting, ready, busy, shut };

  void on_connected();
  void on_readable();
  void flush();
  // Parses in_ when it holds a whole answer; `eof` when the server closed.
  // Returns false when it failed the lane.
  bool try_answer(bool eof);
  void close_fd();
  void lost(bool server_closed);
  void failed(const std::string& why);

  ClientLoop& loop_;
  const Target& target_;
  ApiLaneOwner& owner_;
  ApiLaneCounters& counters_;
  const size_t index_;
  const bool ask_close_;
  int fd_ = -1;
  State state_ = State::closed;
  bool want_write_ = false;
  uint64_t sent_ns_ = 0;
  std::string out_;
  size_t out_sent_ = 0;
  std::string in_;
};

// Builds signed POST /apps/{id}/events requests for one app.
class EventRequestBuilder {
 public:
  EventRequestBuilder(std::string app_id, std::string_view key, std::string_view secret,
                      std::string host_header, bool ask_close);
  ~EventRequestBuilder();
  EventRequestBuilder(const EventRequestBuilder&) = delete;
  EventRequestBuilder& operator=(const EventRequestBuilder&) = delete;

  // The request for `body` (a JSON object: name, channel, data), signed at
  // `unix_seconds`, into `out` (replaced). False if OpenSSL failed.
  bool build(std::string& out, std::string_view body, int64_t unix_seconds);

 private:
  std::string app_id_;
  std::string key_;
  std::string host_header_;
  bool ask_close_;
  std::unique_ptr<channels::AppSigner> signer_;
  std::unique_ptr<channels::Md5Hasher> md5_;
  std::string query_;
  std::string to_sign_path_;
};

}  // namespace windlass::load
