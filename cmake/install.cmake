# Installation and packaging: the library for C++ users, windlass-server for
# operators. Included once, at the end of the top-level CMakeLists.txt (after
# every target exists).
#
#   cmake --install <build> [--prefix P]          P defaults to /usr/local
#     P/include/windlass/*.hpp                    public headers           (component dev)
#     P/lib/libwindlass.a, libwindlass_proto.a                             (dev)
#     P/lib/cmake/windlass/                       find_package(windlass CONFIG) -> windlass::windlass (dev)
#     P/lib/pkgconfig/windlass.pc                 pkg-config --cflags --libs windlass (dev)
#     P/bin/windlass-server                                                (server)
#     P/lib/systemd/system/windlass.service                                (server)
#     P/share/windlass/public/                    the chat page            (server)
#     SYSCONF/windlass/windlass.toml              default config           (server)
#   SYSCONF is /etc when P is /usr (as GNUInstallDirs has it), P/etc otherwise.
#   ("lib" is GNUInstallDirs' libdir: lib/<multiarch> when configured with
#   CMAKE_INSTALL_PREFIX=/usr on Debian.)
#
#   cpack -G DEB (in the build dir) -> windlass-server_<version>_<arch>.deb:
#     the "server" component under /usr, the config as conffile
#     /etc/windlass/windlass.toml, Depends from dpkg-shlibdeps.
#
# Files rewritten while installing (so they are right for the prefix chosen
# at install time, `cmake --install --prefix` included):
#   windlass.pc           prefix= is the install prefix
#   windlass.toml         the static route's root -> P/share/windlass/public
#                         (the source file's "../examples/chat/public" is
#                         relative to deploy/); the demo room's routes into
#                         node_modules left out. An existing, different
#                         windlass.toml is kept; the new one goes beside it
#                         as windlass.toml.default.
#   windlass.service      copied as is for P=/usr; for another prefix its
#                         /usr/bin/windlass-server and /etc/windlass/ paths
#                         are pointed at P.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(WINDLASS_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/windlass")
set(_wl_gen "${CMAKE_CURRENT_BINARY_DIR}/windlass-install")
file(MAKE_DIRECTORY "${_wl_gen}")

# --- The library -------------------------------------------------------------

# The name consumers use, also when windlass is added with add_subdirectory
# or FetchContent instead of find_package.
if(NOT TARGET windlass::windlass)
  add_library(windlass::windlass ALIAS windlass)
  add_library(windlass::windlass_proto ALIAS windlass_proto)
endif()

# The public headers need C++20 (<span>, designated initializers): say so in
# the usage requirements, so a consumer gets -std=c++20 without setting
# CMAKE_CXX_STANDARD itself.
target_compile_features(windlass PUBLIC cxx_std_20)

# An exported target may not carry source- or build-tree include paths.
# windlass_proto's src/ (internal headers, not installed) is for the build
# tree only: wrap plain absolute paths in $<BUILD_INTERFACE:>. The same in
# the build tree; a no-op once CMakeLists.txt writes them that way itself.
foreach(_wl_t windlass_proto windlass)
  get_target_property(_wl_dirs ${_wl_t} INTERFACE_INCLUDE_DIRECTORIES)
  if(_wl_dirs)
    set(_wl_fixed "")
    foreach(_wl_d IN LISTS _wl_dirs)
      if(IS_ABSOLUTE "${_wl_d}" AND NOT _wl_d MATCHES "^\\$<")
        list(APPEND _wl_fixed "$<BUILD_INTERFACE:${_wl_d}>")
      else()
        list(APPEND _wl_fixed "${_wl_d}")
      endif()
    endforeach()
    set_property(TARGET ${_wl_t} PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_wl_fixed}")
  endif()
endforeach()

# windlass links windlass_proto, so both are installed and exported
# (windlass::windlass, windlass::windlass_proto); static, so their
# dependencies are the consumer's to find (windlassConfig.cmake does).
install(TARGETS windlass windlass_proto
  EXPORT windlassTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The application libraries are not installed or exported yet, so their
# headers stay out until the libraries go in: http_client.hpp
# (windlass_http_client, libcurl), auth.hpp (windlass_auth, libjwt),
# redis.hpp and amqp.hpp (windlass_redis, windlass_amqp: hiredis,
# librabbitmq), channels.hpp (windlass_channels, the Pusher hub).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/windlass
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
  FILES_MATCHING PATTERN "*.hpp"
  PATTERN "http_client.hpp" EXCLUDE PATTERN "auth.hpp" EXCLUDE PATTERN "redis.hpp" EXCLUDE
  PATTERN "amqp.hpp" EXCLUDE PATTERN "channels.hpp" EXCLUDE)
install(EXPORT windlassTargets
  NAMESPACE windlass::
  FILE windlassTargets.cmake
  DESTINATION ${WINDLASS_CMAKE_DIR} COMPONENT dev)

# Which optional dependencies the libraries link (ZLIB: permessage-deflate).
set(_wl_links "")
foreach(_wl_t windlass windlass_proto)
  foreach(_wl_p LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
    get_target_property(_wl_l ${_wl_t} ${_wl_p})
    if(_wl_l)
      string(APPEND _wl_links ";${_wl_l}")
    endif()
  endforeach()
endforeach()
set(WINDLASS_LINKS_ZLIB OFF)
if(_wl_links MATCHES "ZLIB::|(^|;)z(;|$)")
  set(WINDLASS_LINKS_ZLIB ON)
endif()

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/windlassConfig.cmake.in
  ${_wl_gen}/windlassConfig.cmake
  INSTALL_DESTINATION ${WINDLASS_CMAKE_DIR})
write_basic_package_version_file(
  ${_wl_gen}/windlassConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${_wl_gen}/windlassConfig.cmake ${_wl_gen}/windlassConfigVersion.cmake
  DESTINATION ${WINDLASS_CMAKE_DIR} COMPONENT dev)

# pkg-config. The libraries are static only, so what they need goes in
# Requires/Libs, not Requires.private/Libs.private: plain
# `pkg-config --libs windlass` must be enough to link.
set(WINDLASS_PC_REQUIRES "openssl, spdlog, fmt, liburing")
if(WINDLASS_LINKS_ZLIB)
  string(APPEND WINDLASS_PC_REQUIRES ", zlib")
endif()
set(WINDLASS_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")  # filled in at install time
configure_file(${CMAKE_CURRENT_LIST_DIR}/windlass.pc.in ${_wl_gen}/windlass.pc.in @ONLY)

string(CONFIGURE [==[
  # windlass.pc, with the prefix given at install time.
  configure_file("@_wl_gen@/windlass.pc.in" "@_wl_gen@/windlass.pc" @ONLY)
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_LIBDIR@/pkgconfig"
       TYPE FILE FILES "@_wl_gen@/windlass.pc")
]==] _wl_code @ONLY)
install(CODE "${_wl_code}" COMPONENT dev)

# --- windlass-server ---------------------------------------------------------

if(TARGET windlass-server)
  install(TARGETS windlass-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
endif()

install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/chat/public/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/windlass/public COMPONENT server)

# The config and the unit depend on the install prefix: written at install time.
set(_wl_toml "${PROJECT_SOURCE_DIR}/deploy/windlass.toml")
set(_wl_unit "${PROJECT_SOURCE_DIR}/deploy/systemd/windlass.service")
string(CONFIGURE [==[
  if(CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
    set(_wl_etc "/etc/windlass")
  else()
    set(_wl_etc "${CMAKE_INSTALL_PREFIX}/etc/windlass")
  endif()
  set(_wl_share "${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_DATADIR@/windlass")
  string(REGEX REPLACE "/+$" "" _wl_share "${_wl_share}")
  string(REGEX REPLACE "//+" "/" _wl_share "${_wl_share}")

  if(EXISTS "@_wl_toml@")
    file(READ "@_wl_toml@" _wl_c)
    string(REGEX REPLACE "root = \"[^\"\n]*examples/chat/public\""
           "root = \"${_wl_share}/public\"" _wl_new "${_wl_c}")
    if(_wl_new STREQUAL _wl_c)
      message(WARNING "windlass.toml: no 'root = \".../examples/chat/public\"' to point at "
                      "${_wl_share}/public; installed unchanged")
    endif()
    # The demo room's libraries are served from the source tree's node_modules:
    # an installed server has none, so their routes are left out.
    set(_wl_end "# END demo room libraries\n")
    string(FIND "${_wl_new}" "# BEGIN demo room libraries" _wl_b)
    string(FIND "${_wl_new}" "${_wl_end}" _wl_e)
    if(_wl_b GREATER -1 AND _wl_e GREATER _wl_b)
      string(LENGTH "${_wl_end}" _wl_l)
      math(EXPR _wl_e "${_wl_e} + ${_wl_l}")
      string(SUBSTRING "${_wl_new}" 0 ${_wl_b} _wl_head)
      string(SUBSTRING "${_wl_new}" ${_wl_e} -1 _wl_tail)
      set(_wl_new "${_wl_head}${_wl_tail}")
    endif()
    file(WRITE "@_wl_gen@/windlass.toml" "${_wl_new}")
    # An operator's edited config is never overwritten by a plain install
    # (the .deb marks it a conffile and lets dpkg ask instead).
    set(_wl_name windlass.toml)
    if(EXISTS "$ENV{DESTDIR}${_wl_etc}/windlass.toml")
      file(READ "$ENV{DESTDIR}${_wl_etc}/windlass.toml" _wl_old)
      if(NOT _wl_old STREQUAL _wl_new)
        set(_wl_name windlass.toml.default)
        message(STATUS "Keeping $ENV{DESTDIR}${_wl_etc}/windlass.toml (changed); "
                       "the new default goes to windlass.toml.default")
      endif()
    endif()
    file(INSTALL DESTINATION "${_wl_etc}" TYPE FILE RENAME "${_wl_name}"
         FILES "@_wl_gen@/windlass.toml")
  endif()

  if(EXISTS "@_wl_unit@")
    file(READ "@_wl_unit@" _wl_c)
    if(NOT CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
      string(REPLACE "/usr/bin/windlass-server" "${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_BINDIR@/windlass-server"
             _wl_c "${_wl_c}")
      string(REPLACE "/etc/windlass/" "${_wl_etc}/" _wl_c "${_wl_c}")
    endif()
    file(WRITE "@_wl_gen@/windlass.service" "${_wl_c}")
    file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
         FILES "@_wl_gen@/windlass.service")
  endif()
]==] _wl_code @ONLY)
install(CODE "${_wl_code}" COMPONENT server)

# --- CPack: the windlass-server .deb -----------------------------------------
#
# `cpack -G DEB` in the build dir. Only the "server" component goes in the
# package (no headers or static libraries). DESTDIR staging with prefix /usr
# puts the config at /etc/windlass/windlass.toml (a conffile), the unit at
# /usr/lib/systemd/system/windlass.service, which is what the unit's own
# ExecStart= and --config paths expect.

set(CPACK_PACKAGE_NAME windlass-server)
set(CPACK_PACKAGE_VENDOR windlass)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "windlass maintainers <maintainers@windlass.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "windlass WebSocket server")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/windlass/windlass")
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)

# One package made of the listed components only (a monolithic package
# would take every install() rule, headers and static libraries included).
set(CPACK_COMPONENTS_ALL server)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

set(CPACK_DEBIAN_PACKAGE_NAME windlass-server)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # windlass-server_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${CPACK_PACKAGE_HOMEPAGE_URL}")
# The extended description (CPack puts the summary above it and indents it).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "windlass-server holds many WebSocket connections in one process, one event
loop per core: RFC 6455 with permessage-deflate, wss:// through OpenSSL,
topics published across loops, Prometheus metrics and health checks.

Configured by /etc/windlass/windlass.toml; start it with
systemctl enable --now windlass")
find_program(WINDLASS_DPKG_SHLIBDEPS dpkg-shlibdeps)
mark_as_advanced(WINDLASS_DPKG_SHLIBDEPS)
if(WINDLASS_DPKG_SHLIBDEPS)
  # Exact Depends (with versions) from the binary's NEEDED libraries.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  # Without dpkg-dev: what windlass-server links on Debian 12.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libc6, libstdc++6, libgcc-s1, libssl3, libspdlog1.10, libfmt9, zlib1g, libsystemd0, libtomlplusplus3, libjwt0, liburing2, libsimdjson14, libhiredis0.14, librabbitmq4, libcurl4")
endif()

# Maintainer scripts and conffiles (dpkg-deb wants them in the control
# archive; CPack puts CONTROL_EXTRA files there).
file(WRITE ${_wl_gen}/deb/conffiles "/etc/windlass/windlass.toml\n")
file(WRITE ${_wl_gen}/deb/postinst [=[#!/bin/sh
# windlass-server: let systemd see a new or upgraded windlass.service.
# The service is not enabled or started: `systemctl enable --now windlass`.
set -e
if [ "$1" = "configure" ] && [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
  # An upgrade restarts a running server with the new binary.
  if [ -n "$2" ] && systemctl is-active --quiet windlass.service; then
    systemctl try-restart windlass.service || true
  fi
fi
exit 0
]=])
file(WRITE ${_wl_gen}/deb/prerm [=[#!/bin/sh
# windlass-server: stop the server before its binary goes away, and disable
# it while its unit file still exists (no dangling symlinks left behind).
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
  systemctl stop windlass.service >/dev/null 2>&1 || true
  systemctl disable windlass.service >/dev/null 2>&1 || true
fi
exit 0
]=])
file(WRITE ${_wl_gen}/deb/postrm [=[#!/bin/sh
set -e
if [ "$1" = "remove" ] || [ "$1" = "purge" ]; then
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
  fi
fi
exit 0
]=])
file(CHMOD ${_wl_gen}/deb/postinst ${_wl_gen}/deb/prerm ${_wl_gen}/deb/postrm
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                      WORLD_READ WORLD_EXECUTE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_wl_gen}/deb/conffiles ${_wl_gen}/deb/postinst ${_wl_gen}/deb/prerm ${_wl_gen}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

include(CPack)
