// windlass: the whole public API.
#pragma once

#include "windlass/app.hpp"
#include "windlass/component.hpp"
#include "windlass/connection.hpp"
#include "windlass/http.hpp"
#include "windlass/loop.hpp"
#include "windlass/request.hpp"
#include "windlass/stats.hpp"
