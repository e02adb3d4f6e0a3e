// RabbitMQ as an input: messages a web application publishes to an AMQP
// 0-9-1 exchange, consumed from a durable queue of this node's own and
// handed, one by one, to a handler on a windlass Loop.
//
//   windlass::AmqpOptions o;
//   o.url = "amqp://guest:guest@127.0.0.1:5672/%2f";
//   o.node_id = "web-1";                      // the queue is "windlass.web-1"
//   windlass::AmqpInput input(app.loop(), o, [&](std::string_view key, std::string_view body) {
//     return hub.publish_payload("my-app", key, body, windlass::kAmqpOrigin);  // false: rejected
//   });
//   input.start();
//
// What it declares, on every (re)connection: the exchange (type topic by
// default, durable), the queue (durable, neither exclusive nor
// auto-deleted, so messages wait in it while this node is away), one
// binding per binding key ("#": everything), basic.qos with the
// prefetch, and a consumer with manual acknowledgements.
//
// Threads. librabbitmq (rabbitmq-c) is a blocking client: its calls read
// and write the socket until a frame is complete, and it sends heartbeats
// only from inside its own calls. It cannot be driven by a loop's epoll
// the way hiredis or libcurl can, so each AmqpInput has one thread of its
// own — one per input, not one per connection or per message. That thread
// waits in poll() on the broker's socket and on an eventfd; it reads
// frames, assembles each delivery, posts it to the Loop, and sends the
// acknowledgement when the handler's verdict comes back through a locked
// queue (the eventfd wakes it, so an ack leaves at once rather than after
// a read timeout). The cost: one thread, a post and a verdict per message.
// The Loop's thread never blocks on the broker.
//
// Acknowledgements and what is guaranteed.
// - A delivery is acknowledged only after the handler returned true for it
//   on the Loop (for the hub: the event is in every loop's mailbox); false
//   rejects it without requeueing (a poison message is dropped, never
//   retried); a body over max_message_size is rejected before it is
//   posted. So every message that reaches the queue is handed to the
//   handler, or rejected, at least once.
// - A delivery is handed over only while its connection lives: when the
//   connection is lost (or stop() is called) deliveries still waiting in
//   the Loop's mailbox are not handed over at all — the broker requeues
//   them and they come again on the next connection.
// - A duplicate could come from one place: a delivery handed over whose
//   ack the broker had not processed when the connection broke; it is
//   redelivered, flagged so. The input remembers the fingerprint (routing
//   key, body, message-id and timestamp properties) of every delivery
//   handed over whose ack is not known to be processed — a synchronous
//   basic.qos after each batch of acks proves the acks before it were,
//   since a channel's methods are handled in order — and acknowledges a
//   redelivered message that matches one without handing it over again.
//
// So, as long as this process runs: a message the handler took is not
// handed to it again, across lost connections and broker restarts
// (tests/integration/amqp_input_test.py cuts connections mid-stream and
// restarts RabbitMQ, and counts). The limits of that promise:
// - a crash or kill -9 of this process forgets what it handed over: what
//   was taken and not yet acknowledged comes again (at least once);
// - a broker that crashes (not a clean stop) may bring back messages
//   whose acks it processed but had not yet written to disk;
// - redeliveries are compared for redelivery_window after the reconnection,
//   with at most 4 × prefetch + 64 fingerprints kept;
// - two byte-identical messages (same key, body and properties), the first
//   taken and acknowledged, the second delivered but still unread when the
//   connection broke: the second is taken for the first's redelivery and
//   dropped. A message-id property on each message rules that out.
// A message the handler refused may be handed to it again after a lost
// connection (its reject lost too), and is refused again.
//
// Reconnection: on any failure (socket, heartbeat, the broker closing the
// connection or the channel, the consumer cancelled because the queue was
// deleted) the input waits a backoff — initial, doubling up to max, each
// wait drawn at random between half of it and all of it — and connects
// and declares again. A log line says why on each failure and on each
// reconnection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "windlass/loop.hpp"

namespace windlass {

// The origin tag (PublishOptions::origin) of what an AMQP input publishes:
// every node consumes its own queue, so a bridge must not carry these to
// the other nodes again. "AMQP" in ASCII.
inline constexpr uint32_t kAmqpOrigin = 0x414d5150;

// A broker address, as in RabbitMQ's URI spec
// (https://www.rabbitmq.com/uri-spec.html): amqp://user:pass@host:port/vhost,
// user, password and vhost percent-encoded.
struct AmqpUrl {
  std::string host = "localhost";
  uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";

  // The URL again, with the password left out: for log lines.
  std::string redacted() const;
};

enum class AmqpUrlError : uint8_t {
  none,
  empty,
  bad_scheme,       // not amqp://
  tls_unsupported,  // amqps://
  bad_character,    // a space, a control character or a '#'
  bad_escape,       // '%' not followed by two hex digits, or an encoded NUL
  bad_host,         // an unclosed IPv6 bracket, an empty bracket
  bad_port,         // not 1-65535
  empty_vhost,      // "amqp://host/": RabbitMQ's default vhost is written %2f
  slash_in_vhost,   // a '/' in the vhost must be %2f
  has_query,        // ?heartbeat=... and the like: use AmqpOptions
};
// A sentence saying what is wrong and how to write it.
const char* describe(AmqpUrlError e) noexcept;

// Pure. On error, `out` is left as it was.
AmqpUrlError parse_amqp_url(std::string_view text, AmqpUrl& out);

struct AmqpOptions {
  std::string url = "amqp://guest:guest@localhost:5672/%2f";
  std::string exchange = "windlass";
  std::string exchange_type = "topic";  // "topic", "direct" or "fanout"
  bool durable = true;                  // the exchange and the queue
  // Empty: "windlass." + node_id. Each node needs a queue of its own: two
  // consumers of one queue share its messages, each getting some.
  std::string queue;
  std::string node_id;
  std::vector<std::string> binding_keys = {"#"};
  // Deliveries not yet acknowledged, at most: what is in the Loop's
  // mailbox at once (times max_message_size, in memory).
  uint16_t prefetch = 100;
  // Bodies above this are rejected unread by the handler.
  size_t max_message_size = 1024 * 1024;
  // Negotiated down to the broker's if it asks for less; 0: none.
  std::chrono::seconds heartbeat{30};
  std::chrono::milliseconds connect_timeout{10'000};  // TCP connect, then the AMQP handshake
  std::chrono::milliseconds rpc_timeout{10'000};      // each declare, bind, qos, close
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  // How long after a reconnection a redelivered message is still compared
  // with what the lost connection handed over.
  std::chrono::milliseconds redelivery_window{60'000};
};

// The first thing wrong with `options` ("exchange: ..."), or "".
std::string validate(const AmqpOptions& options);
// What is wrong with an exchange or queue name, or "": 1-255 bytes, no
// control characters, not starting with "amq." (the broker's own).
std::string amqp_name_problem(std::string_view name);

// A snapshot: every field read separately.
struct AmqpStats {
  bool connected = false;
  // When `connected` last changed (or when the input started), since the epoch.
  std::chrono::system_clock::time_point since{};
  uint64_t delivered = 0;   // handed to the handler, which took them, and acknowledged
  uint64_t rejected = 0;    // the handler refused them, or too large: rejected without requeue
  uint64_t duplicates = 0;  // redeliveries of messages already handed over: acknowledged only
  uint64_t reconnects = 0;  // connections established after a lost one
  uint64_t connect_failures = 0;
  uint64_t in_flight = 0;  // posted to the Loop, verdict not yet back
};

class AmqpInput {
 public:
  // Runs on `loop`'s thread: true takes the message (it is acknowledged),
  // false refuses it (rejected, not requeued). An exception counts as
  // false and is logged. The views are valid during the call only.
  using Handler = std::function<bool(std::string_view routing_key, std::string_view body)>;

  // Validates the options (throws std::invalid_argument with validate()'s
  // message). Nothing connects before start(). `loop` must outlive this
  // object or at least run until it is destroyed.
  AmqpInput(Loop& loop, AmqpOptions options, Handler handler);
  // stop(), then waits for the thread. Do not destroy it from the handler.
  ~AmqpInput();
  AmqpInput(const AmqpInput&) = delete;
  AmqpInput& operator=(const AmqpInput&) = delete;

  // Starts the thread, which connects. Once.
  void start();
  // Any thread, returns at once: no delivery is handed over after this;
  // the thread acknowledges what the handler already took, closes the
  // channel and the connection, and ends (within rpc_timeout, should the
  // broker not answer the close).
  void stop();

  // Any thread.
  AmqpStats stats() const;
  // The queue consumed (options.queue, or the one derived from node_id).
  const std::string& queue() const noexcept;
  // The URL without its password.
  const std::string& url() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace windlass
