// The hub's HTTP API: what a PHP or Laravel app (or any Pusher server SDK)
// publishes through. Each call is verified (signature, key, a timestamp
// within ±api_timestamp_skew: a replayed request is refused), parsed once,
// and an event encoded once per channel, however many subscribers it has:
// the broker shares the frame across loops.
#include <chrono>

#include "channels/cluster_state.hpp"
#include "channels/hub_internal.hpp"

#include <mutex>

namespace windlass::channels {

namespace {

Response api_error(int status, std::string_view reason) {
  std::string body = "{\"error\":";
  append_json_string(body, reason);
  body += "}";
  return Response::json(status, std::move(body));
}

void append_channel_info(std::string& out, Hub::Impl& hub, AppState& app, std::string_view channel,
                         const InfoAttributes& info, bool occupied_field) {
  const std::string topic = app.topic(channel);
  const size_t subs = hub.app.broker().subscriber_count(topic);
  const bool presence = classify_channel(channel).type == ChannelType::presence;
  out += '{';
  bool first = true;
  auto field = [&](std::string_view name) {
    if (!first) out += ',';
    first = false;
    out += '"';
    out += name;
    out += "\":";
  };
  if (occupied_field) {
    field("occupied");
    out += subs > 0 ? "true" : "false";
  }
  if (info.subscription_count) {
    field("subscription_count");
    out += std::to_string(subs);
  }
  if (info.user_count && presence) {
    field("user_count");
    out += std::to_string(hub.presence.user_count(topic));
  }
  out += '}';
}

class Api {
 public:
  explicit Api(Hub::Impl& hub) : hub_(hub) {}

  // In a cluster, the questions about channels are the cluster's: asked of
  // Redis, answered when it replies (the connection waits; keep-alive and
  // the order of pipelined calls hold). Everything else is answered now.
  void handle_async(const Request& req, HttpResponder responder) {
    if (hub_.clustered() && (req.method == "GET")) {
      ApiPath path;
      AppState* app = nullptr;
      if (parse_api_path(req.method, req.path, path) == ApiError::none) {
        auto it = hub_.by_id.find(path.app_id);
        if (it != hub_.by_id.end()) app = it->second;
      }
      if (app != nullptr && app->config.enabled) {
        Response denied;
        if (verify(*app, req, denied)) {
          LoopHub& l = hub_.loops->get();
          switch (path.route) {
            case ApiRoute::channels: return cluster_channels(*app, l, std::move(responder));
            case ApiRoute::channel: return cluster_channel(*app, l, path, std::move(responder));
            case ApiRoute::channel_users: return cluster_users(*app, path, std::move(responder));
            default: break;
          }
        } else {
          app->counters.count_api(denied.status);
          responder.send(std::move(denied));
          return;
        }
      }
    }
    Response res;
    handle(req, res);
    responder.send(std::move(res));
  }

  // Verifies the signature; on failure fills `res` and counts it.
  bool verify(AppState& app, const Request& req, Response& res) {
    LoopHub& l = hub_.loops->get();
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const ApiError e = l.verifier.verify(ApiRequest{req.method, req.path, req.query, req.body}, *l.signers[app.index], now);
    if (e == ApiError::none) return true;
    if (http_status(e) == 401) app.counters.count_auth_failure(std::string("api: ") + describe(e));
    res = api_error(http_status(e), describe(e));
    return false;
  }

  void handle(const Request& req, Response& res) {
    ApiPath path;
    ApiError e = parse_api_path(req.method, req.path, path);
    if (e != ApiError::none) {
      res = api_error(http_status(e), describe(e));
      return;
    }
    auto it = hub_.by_id.find(path.app_id);
    if (it == hub_.by_id.end()) {
      res = api_error(404, "unknown app");
      return;
    }
    AppState& app = *it->second;
    LoopHub& l = hub_.loops->get();
    if (!verify(app, req, res)) {
      app.counters.count_api(res.status);
      return;
    }
    if (!app.config.enabled) {
      res = api_error(403, "app disabled");
    } else {
      switch (path.route) {
        case ApiRoute::events: events(app, l, req, res, false); break;
        case ApiRoute::batch_events: events(app, l, req, res, true); break;
        case ApiRoute::channels: channels(app, l, res); break;
        case ApiRoute::channel: channel(app, l, path, res); break;
        case ApiRoute::channel_users: users(app, path, res); break;
        case ApiRoute::terminate_user_connections: terminate(app, path, res); break;
      }
    }
    app.counters.count_api(res.status);
  }

 private:
  void events(AppState& app, LoopHub& l, const Request& req, Response& res, bool batch) {
    ApiBodyParser& p = l.body_parser;
    const ApiError e = batch ? p.parse_batch_events(req.body) : p.parse_events(req.body);
    if (e != ApiError::none) {
      res = api_error(http_status(e), p.error_message(e));
      return;
    }
    // The app's own limits, tighter than the parser's defaults where set.
    for (const ApiEvent& ev : p.events()) {
      if (ev.data.size() > app.config.max_event_bytes) {
        res = api_error(413, "event data is larger than " + std::to_string(app.config.max_event_bytes) + " bytes");
        return;
      }
      if (ev.channels.size() > app.config.max_channels_per_event) {
        res = api_error(400, "more than " + std::to_string(app.config.max_channels_per_event) + " channels");
        return;
      }
    }
    if (batch && p.events().size() > app.config.max_batch_events) {
      res = api_error(413, "more than " + std::to_string(app.config.max_batch_events) + " events in a batch");
      return;
    }
    std::string& out = l.out;
    for (const ApiEvent& ev : p.events()) {
      const uint64_t except = ev.socket_id.empty() ? 0 : connection_id_of(ev.socket_id);
      for (std::string_view channel : ev.channels) {
        out.clear();
        append_channel_event_json(out, ev.name, channel, ev.data_json);
        hub_.publish(app, channel, out, except);
      }
    }
    // The answer: {} or, with info, what it asked about each channel.
    std::string body;
    if (!batch) {
      const ApiEvent& ev = p.events().front();
      if (ev.info.subscription_count || ev.info.user_count) {
        body = "{\"channels\":{";
        bool first = true;
        for (std::string_view channel : ev.channels) {
          if (!first) body += ',';
          first = false;
          append_json_string(body, channel);
          body += ':';
          append_channel_info(body, hub_, app, channel, ev.info, false);
        }
        body += "}}";
      } else {
        body = "{}";
      }
    } else {
      bool any_info = false;
      for (const ApiEvent& ev : p.events()) any_info = any_info || ev.info.subscription_count || ev.info.user_count;
      if (any_info) {
        body = "{\"batch\":[";
        bool first = true;
        for (const ApiEvent& ev : p.events()) {
          if (!first) body += ',';
          first = false;
          append_channel_info(body, hub_, app, ev.channels.front(), ev.info, false);
        }
        body += "]}";
      } else {
        body = "{}";
      }
    }
    res = Response::json(200, std::move(body));
  }

  void channels(AppState& app, LoopHub& l, Response& res) {
    std::string_view prefix = l.verifier.param("filter_by_prefix").value_or("");
    InfoAttributes info;
    if (!parse_info_attributes(l.verifier.param("info").value_or(""), info)) {
      res = api_error(400, "info: only user_count and subscription_count");
      return;
    }
    if (info.user_count && !prefix.starts_with("presence-")) {
      res = api_error(400, "info=user_count needs filter_by_prefix=presence-");
      return;
    }
    std::string body = "{\"channels\":{";
    bool first = true;
    for (const std::string& topic : hub_.app.broker().topics()) {
      if (!std::string_view(topic).starts_with(app.topic_prefix)) continue;
      std::string_view channel = std::string_view(topic).substr(app.topic_prefix.size());
      if (!channel.starts_with(prefix)) continue;
      if (!first) body += ',';
      first = false;
      append_json_string(body, channel);
      body += ':';
      append_channel_info(body, hub_, app, channel, info, false);
    }
    body += "}}";
    res = Response::json(200, std::move(body));
  }

  void channel(AppState& app, LoopHub& l, const ApiPath& path, Response& res) {
    InfoAttributes info;
    if (!parse_info_attributes(l.verifier.param("info").value_or(""), info)) {
      res = api_error(400, "info: only user_count and subscription_count");
      return;
    }
    if (info.user_count && path.channel_info.type != ChannelType::presence) {
      res = api_error(400, "user_count is only for presence channels");
      return;
    }
    std::string body;
    append_channel_info(body, hub_, app, path.channel, info, true);
    res = Response::json(200, std::move(body));
  }

  void users(AppState& app, const ApiPath& path, Response& res) {
    std::string body = "{\"users\":[";
    bool first = true;
    for (const auto& [id, info] : hub_.presence.members(app.topic(path.channel))) {
      if (!first) body += ',';
      first = false;
      body += "{\"id\":";
      append_json_string(body, id);
      body += '}';
    }
    body += "]}";
    res = Response::json(200, std::move(body));
  }

  void terminate(AppState& app, const ApiPath& path, Response& res) {
    // Every loop closes its own connections of that user.
    for (unsigned i = 0; i < hub_.app.thread_count(); ++i) {
      Loop& loop = hub_.app.loop(i);
      loop.post([&hub = hub_, &loop, app_index = app.index, user = path.user_id] {
        LoopHub& l = hub.loops->get(loop);
        auto it = l.users.find({app_index, user});
        if (it == l.users.end()) return;
        const std::vector<Connection> conns = it->second;
        for (const Connection& c : conns) {
          hub.apps[app_index]->counters.count_close(static_cast<uint16_t>(PusherClose::unauthorized));
          std::string out;
          append_error(out, static_cast<uint16_t>(PusherClose::unauthorized), "connection terminated by the server");
          c.send(out);
          c.close(static_cast<uint16_t>(PusherClose::unauthorized), "terminated by the server");
        }
      });
    }
    res = Response::json(200, "{}");
  }

  // ---- the cluster's answers (replies come on the bridge's loop; the
  // responder may answer from any thread)

  void cluster_channels(AppState& app, LoopHub& l, HttpResponder responder) {
    std::string prefix(l.verifier.param("filter_by_prefix").value_or(""));
    InfoAttributes info;
    if (!parse_info_attributes(l.verifier.param("info").value_or(""), info)) {
      return respond(app, responder, api_error(400, "info: only user_count and subscription_count"));
    }
    if (info.user_count && !std::string_view(prefix).starts_with("presence-")) {
      return respond(app, responder, api_error(400, "info=user_count needs filter_by_prefix=presence-"));
    }
    hub_.cluster->channels(app.config.id, [this, ap = &app, prefix, info, responder](bool ok, std::vector<std::string> all) {
      if (!ok) return respond(*ap, responder, api_error(503, "cluster state unreachable"));
      std::vector<std::string> chosen;
      for (auto& c : all) {
        if (std::string_view(c).starts_with(prefix)) chosen.push_back(std::move(c));
      }
      if (!info.user_count) {
        std::string body = "{\"channels\":{";
        for (size_t i = 0; i < chosen.size(); ++i) {
          if (i != 0) body += ',';
          append_json_string(body, chosen[i]);
          body += ":{}";
        }
        body += "}}";
        return respond(*ap, responder, Response::json(200, std::move(body)));
      }
      // user_count for each: one query per channel, answered when the last replies.
      if (chosen.empty()) return respond(*ap, responder, Response::json(200, "{\"channels\":{}}"));
      struct Gather {
        explicit Gather(size_t n) : users(n, 0), left(n) {}
        std::mutex mu;
        std::vector<size_t> users;
        size_t left;
        bool failed = false;
      };
      auto g = std::make_shared<Gather>(chosen.size());
      auto names = std::make_shared<std::vector<std::string>>(std::move(chosen));
      for (size_t i = 0; i < names->size(); ++i) {
        hub_.cluster->counts(ap->topic((*names)[i]), true, [this, ap, g, names, i, responder](bool ok2, size_t, size_t users) {
          bool last = false;
          {
            std::lock_guard lock(g->mu);
            g->users[i] = users;
            g->failed = g->failed || !ok2;
            last = --g->left == 0;
          }
          if (!last) return;
          if (g->failed) return respond(*ap, responder, api_error(503, "cluster state unreachable"));
          std::string body = "{\"channels\":{";
          for (size_t k = 0; k < names->size(); ++k) {
            if (k != 0) body += ',';
            append_json_string(body, (*names)[k]);
            body += ":{\"user_count\":" + std::to_string(g->users[k]) + "}";
          }
          body += "}}";
          respond(*ap, responder, Response::json(200, std::move(body)));
        });
      }
    });
  }

  void cluster_channel(AppState& app, LoopHub& l, const ApiPath& path, HttpResponder responder) {
    InfoAttributes info;
    if (!parse_info_attributes(l.verifier.param("info").value_or(""), info)) {
      return respond(app, responder, api_error(400, "info: only user_count and subscription_count"));
    }
    const bool presence = path.channel_info.type == ChannelType::presence;
    if (info.user_count && !presence) {
      return respond(app, responder, api_error(400, "user_count is only for presence channels"));
    }
    hub_.cluster->counts(app.topic(path.channel), info.user_count,
                         [this, ap = &app, info, responder](bool ok, size_t subs, size_t users) {
                           if (!ok) return respond(*ap, responder, api_error(503, "cluster state unreachable"));
                           std::string body = std::string("{\"occupied\":") + (subs > 0 ? "true" : "false");
                           if (info.subscription_count) body += ",\"subscription_count\":" + std::to_string(subs);
                           if (info.user_count) body += ",\"user_count\":" + std::to_string(users);
                           body += '}';
                           respond(*ap, responder, Response::json(200, std::move(body)));
                         });
  }

  void cluster_users(AppState& app, const ApiPath& path, HttpResponder responder) {
    hub_.cluster->members(app.topic(path.channel), [this, ap = &app, responder](bool ok, ClusterState::Members members) {
      if (!ok) return respond(*ap, responder, api_error(503, "cluster state unreachable"));
      std::string body = "{\"users\":[";
      for (size_t i = 0; i < members.size(); ++i) {
        if (i != 0) body += ',';
        body += "{\"id\":";
        append_json_string(body, members[i].first);
        body += '}';
      }
      body += "]}";
      respond(*ap, responder, Response::json(200, std::move(body)));
    });
  }

  static void respond(AppState& app, const HttpResponder& responder, Response res) {
    app.counters.count_api(res.status);
    responder.send(std::move(res));
  }

  Hub::Impl& hub_;
};

}  // namespace

void register_http_api(Hub::Impl& impl) {
  auto api = std::make_shared<Api>(impl);
  impl.app.http_async("/apps/*", [api](const Request& req, HttpResponder res) { api->handle_async(req, std::move(res)); });
}

}  // namespace windlass::channels
