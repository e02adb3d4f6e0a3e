// The application's side of a WebSocket route: Ratchet's
// MessageComponentInterface, with C++ names.
//
// All four callbacks run on the connection's loop thread. An exception
// thrown from on_open, on_message or on_close is caught at this boundary
// and passed to on_error; the connection is then closed with 1011 unless
// on_error closed it already. It never reaches the loop.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include "windlass/connection.hpp"

namespace windlass {

class MessageComponent {
 public:
  virtual ~MessageComponent() = default;

  // The handshake completed; the connection is open.
  virtual void on_open(Connection& conn) { (void)conn; }
  // A complete message arrived (text already validated as UTF-8).
  virtual void on_message(Connection& conn, const Message& msg) = 0;
  // The connection ended; called exactly once per opened connection.
  virtual void on_close(Connection& conn, const CloseInfo& info) {
    (void)conn;
    (void)info;
  }
  // A callback of this component threw.
  virtual void on_error(Connection& conn, std::exception_ptr error) {
    (void)conn;
    (void)error;
  }

  // Subprotocols this component speaks, in order of preference
  // (Sec-WebSocket-Protocol, RFC 6455 §4.2.2). Empty: none is negotiated.
  virtual std::vector<std::string> subprotocols() const { return {}; }
};

// The text of an exception_ptr, for logs ("unknown exception" for non-std types).
std::string describe_exception(std::exception_ptr e);

}  // namespace windlass
