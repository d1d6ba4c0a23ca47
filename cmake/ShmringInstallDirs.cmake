# Where `cmake --install` puts each part, and the compiled-in defaults derived from the
# same variables. Every destination is relative to CMAKE_INSTALL_PREFIX, so
# `cmake --install --prefix DIR` writes only below DIR; the one exception is what
# GNUInstallDirs itself places outside the prefix (the config under /etc and the unit
# under /lib/systemd/system for a /usr install, as a Debian package wants).
include(GNUInstallDirs)

set(SHMRING_INSTALL_PLUGINDIR "${CMAKE_INSTALL_LIBDIR}/shmring/plugins")
set(SHMRING_INSTALL_LUADIR "${CMAKE_INSTALL_DATADIR}/lua/5.1")
# shmringd's default plugin_dir: the plugins of this install.
set(SHMRING_PLUGIN_DIR "${CMAKE_INSTALL_FULL_LIBDIR}/shmring/plugins")

# GNUInstallDirs maps the prefix /usr to /etc (and /opt/X to /etc/opt/X): keep that,
# else stay relative so an install-time --prefix moves it too.
string(FIND "${CMAKE_INSTALL_FULL_SYSCONFDIR}/" "${CMAKE_INSTALL_PREFIX}/" sysconf_at)
if(sysconf_at EQUAL 0)
  set(SHMRING_INSTALL_CONFDIR "${CMAKE_INSTALL_SYSCONFDIR}/shmring")
else()
  set(SHMRING_INSTALL_CONFDIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/shmring")
endif()
set(SHMRING_CONFIG_FILE "${CMAKE_INSTALL_FULL_SYSCONFDIR}/shmring/shmringd.conf")
# systemd's unit directory on Debian 12 (usrmerge moratorium: /lib, not /usr/lib) for a
# /usr install, else below the prefix.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(SHMRING_INSTALL_UNITDIR "/lib/systemd/system")
else()
  set(SHMRING_INSTALL_UNITDIR "lib/systemd/system")
endif()
