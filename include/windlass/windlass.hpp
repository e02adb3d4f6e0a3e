// windlass: the whole public API.
#pragma once

#include "windlass/access.hpp"
#include "windlass/app.hpp"
#include "windlass/broker.hpp"
#include "windlass/component.hpp"
#include "windlass/connection.hpp"
#include "windlass/decorators.hpp"
#include "windlass/http.hpp"
#include "windlass/log.hpp"
#include "windlass/loop.hpp"
#include "windlass/loop_local.hpp"
#include "windlass/request.hpp"
#include "windlass/stats.hpp"
#include "windlass/upgrade.hpp"
#include "windlass/ws_options.hpp"
