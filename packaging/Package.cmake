# The Debian package: `cpack -G DEB` in a build tree configured with
# -DCMAKE_INSTALL_PREFIX=/usr (`make deb`). The package is the install of that tree, so
# the unit, the compiled-in defaults and the files agree on every path.

# The systemd unit and the example config, with this install's paths (the config is a
# conffile: dpkg keeps the operator's edits on upgrades).
configure_file(${CMAKE_CURRENT_LIST_DIR}/shmringd.service.in
               ${PROJECT_BINARY_DIR}/packaging/shmringd.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/shmringd.service
        DESTINATION ${SHMRING_INSTALL_UNITDIR})
configure_file(${PROJECT_SOURCE_DIR}/conf/shmringd.conf.in ${PROJECT_BINARY_DIR}/conf/shmringd.conf
               @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/conf/shmringd.conf DESTINATION ${SHMRING_INSTALL_CONFDIR})

set(CPACK_PACKAGE_NAME shmring)
set(CPACK_PACKAGE_VENDOR "shmring")
set(SHMRING_DEB_MAINTAINER "shmring maintainers <maintainers@shmring.example.org>" CACHE STRING
    "Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT "${SHMRING_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "C plugins for Kong/OpenResty over shared-memory rings")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "shmringd runs C plugins (key-auth, jwt, rate-limiting, request-transformer,\n"
  "log, ...) for the workers of a Kong, OpenResty or nginx gateway, which hand\n"
  "it each request phase through shared-memory rings. The package holds the\n"
  "daemon, its plugins, the client library libshmring and its headers, a\n"
  "systemd unit and the gateway's Lua modules (Kong installs those as the\n"
  "LuaRocks rock instead).")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/shmring/shmring")
# Depends: only the libraries the binaries link (dpkg-shlibdeps). The gateway is the
# operator's choice and not a dependency.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
# Debian policy: a copyright file and a compressed changelog in the package's doc dir.
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/changelog.in
               ${PROJECT_BINARY_DIR}/packaging/changelog @ONLY)
execute_process(COMMAND gzip -9nf ${PROJECT_BINARY_DIR}/packaging/changelog)
install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz ${CMAKE_CURRENT_LIST_DIR}/debian/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
set(debian_dir ${PROJECT_BINARY_DIR}/packaging/debian)
foreach(f conffiles postinst prerm postrm triggers)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/${f}.in ${debian_dir}/${f} @ONLY)
  list(APPEND CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${debian_dir}/${f})
endforeach()
include(CPack)
