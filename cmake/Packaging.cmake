# Install rules and the Debian package (cpack -G DEB): the binary, the
# hardened systemd unit, the default policy as a conffile, the man page, bash
# completion, and the documentation with the deployment examples.
#
# The default prefix is /usr (a system daemon: the unit names
# /usr/sbin/ebpf-diskwatch and /etc/ebpf-diskwatch/policy.yaml).
include(GNUInstallDirs)

set(DW_UNIT_DIR lib/systemd/system)
set(DW_POLICY_SOURCE ${PROJECT_SOURCE_DIR}/examples/policy.yaml)

install(FILES packaging/ebpf-diskwatch.service DESTINATION ${DW_UNIT_DIR})

# The default policy is the enforcement issue's commented example
# (examples/policy.yaml); installed as /etc/ebpf-diskwatch/policy.yaml.
if(EXISTS ${DW_POLICY_SOURCE})
  install(FILES ${DW_POLICY_SOURCE} DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/ebpf-diskwatch)
  set(DW_CONFFILES "${CMAKE_INSTALL_FULL_SYSCONFDIR}/ebpf-diskwatch/policy.yaml\n")
else()
  message(STATUS "examples/policy.yaml not present: the package carries no default policy")
  set(DW_CONFFILES "")
endif()

# Debian wants man pages compressed.
find_program(GZIP_PROGRAM gzip REQUIRED)
add_custom_command(
  OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/man/ebpf-diskwatch.8.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
  COMMAND ${GZIP_PROGRAM} -9nc ${PROJECT_SOURCE_DIR}/packaging/ebpf-diskwatch.8 > ${CMAKE_CURRENT_BINARY_DIR}/man/ebpf-diskwatch.8.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/ebpf-diskwatch.8
  COMMENT "Compressing the man page")
add_custom_target(manpage ALL DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/man/ebpf-diskwatch.8.gz)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/ebpf-diskwatch.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

install(FILES packaging/completions/ebpf-diskwatch.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ebpf-diskwatch)

file(GLOB DW_DOCS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
list(FILTER DW_DOCS EXCLUDE REGEX "CONTRIBUTING\\.md$")
install(FILES ${DW_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY deploy/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# --- CPack: one .deb ----------------------------------------------------------
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/packaging/conffiles "${DW_CONFFILES}")
set(DW_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
if(DW_CONFFILES)
  list(APPEND DW_CONTROL_EXTRA ${CMAKE_CURRENT_BINARY_DIR}/packaging/conffiles)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ebpf-diskwatch)
set(CPACK_PACKAGE_VENDOR "ebpf-diskwatch")
set(CPACK_PACKAGE_CONTACT "ebpf-diskwatch maintainers <ebpf-diskwatch@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "kernel-level disk-write monitor that stops runaway writers")
set(CPACK_PACKAGE_DESCRIPTION
  "ebpf-diskwatch attributes every byte written to its process, cgroup and mount with CO-RE eBPF, shows the writers live (top), and as an agent alerts, throttles or kills runaway writers by policy before they fill the disk. Events go to stdout, files, a unix socket, syslog or journald; metrics to Prometheus.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps (dpkg-dev) computes Depends from the binary's libraries.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "socat")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus, rsyslog")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${DW_CONTROL_EXTRA}")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
